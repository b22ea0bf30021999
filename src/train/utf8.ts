// Training text must be valid UTF-8: a decoder would turn bad bytes into U+FFFD and the model would learn it. A bad
// byte is an error naming the file, its line and its byte offset.
import { isUtf8 } from 'node:buffer';

// Length of the UTF-8 sequence a lead byte starts (0: not a lead byte).
function sequenceLength(b: number): number {
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return 2;
  if (b >= 0xe0 && b <= 0xef) return 3;
  if (b >= 0xf0 && b <= 0xf4) return 4;
  return 0;
}

/** Offset of the first byte that is not valid UTF-8 (an incomplete sequence at the end counts), or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; ) {
    const n = sequenceLength(bytes[i]);
    if (n === 0 || i + n > bytes.length) return i;
    // The second byte's range excludes overlong forms, surrogates and code points above U+10FFFF.
    const lo = bytes[i] === 0xe0 ? 0xa0 : bytes[i] === 0xf0 ? 0x90 : 0x80;
    const hi = bytes[i] === 0xed ? 0x9f : bytes[i] === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k < n; k++) {
      const c = bytes[i + k];
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
    }
    i += n;
  }
  return -1;
}

/** Where a complete-characters prefix of a chunk ends (a sequence cut by the chunk's end is left out). */
export function completePrefix(bytes: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back];
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const n = sequenceLength(b);
    return n > back ? bytes.length - back : bytes.length;
  }
  return bytes.length;
}

function countNewlines(bytes: Uint8Array, end: number): number {
  let n = 0;
  for (let i = 0; i < end; i++) if (bytes[i] === 0x0a) n++;
  return n;
}

/**
 * Decodes bytes that must be UTF-8. `at` says where they lie in `file` (byte offset, and lines before them) for
 * the error a bad byte gets.
 */
export function decodeUtf8(bytes: Uint8Array, file: string, at = { offset: 0, lines: 0 }): string {
  if (!isUtf8(bytes)) {
    const bad = firstInvalidUtf8(bytes);
    const line = at.lines + countNewlines(bytes, bad) + 1;
    throw new Error(
      `${file}:${line}: byte 0x${bytes[bad].toString(16).padStart(2, '0')} at offset ${at.offset + bad} is not valid UTF-8; ` +
        'training text must be UTF-8 (convert the file, e.g. with iconv)',
    );
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}
