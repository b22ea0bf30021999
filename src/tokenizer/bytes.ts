// GPT-2 byte-level building blocks: the byte -> printable-unicode table and the pre-tokenization regex.
//
// Byte-level BPE works on UTF-8 bytes, but stores tokens as strings. GPT-2 maps every byte to one printable
// code point: the 188 bytes that are already printable and unambiguous (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) map to
// themselves, the other 68 (control characters, space, DEL, NBSP, soft hyphen, ...) map to U+0100, U+0101, ...
// in byte order. So the space byte 0x20 becomes `Ġ` (U+0120) and `\n` becomes `Ċ` (U+010A).

function buildByteTable(): string[] {
  const table = new Array<string>(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0x100;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : next++);
  return table;
}

/** `BYTE_TO_CHAR[b]` is the single-code-point string that stands for byte `b` inside byte-level tokens. */
export const BYTE_TO_CHAR: readonly string[] = buildByteTable();

/** Inverse of BYTE_TO_CHAR. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/**
 * GPT-2's pre-tokenization pattern (the one the `ByteLevel` pre-tokenizer uses with `use_regex: true`): English
 * contractions, runs of letters, runs of digits, runs of other symbols (each optionally with one leading space),
 * then whitespace — a whitespace run followed by a non-space gives its last character to the next piece.
 */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Splits `text` into GPT-2 pre-tokens (their concatenation is `text`). */
export function preTokenize(text: string): string[] {
  return text.match(GPT2_PATTERN) ?? [];
}

const utf8 = new TextEncoder();

/** The byte-level form of `text`: its UTF-8 bytes, each written as BYTE_TO_CHAR[byte]. */
export function toByteLevel(text: string): string {
  let out = '';
  for (const b of utf8.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}

/** Inverse of toByteLevel (invalid UTF-8 decodes to U+FFFD); throws on a character outside the byte table. */
export function fromByteLevel(token: string): string {
  const bytes: number[] = [];
  for (const c of token) {
    const b = CHAR_TO_BYTE.get(c);
    if (b === undefined) throw new Error(`not a byte-level character: ${JSON.stringify(c)}`);
    bytes.push(b);
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
