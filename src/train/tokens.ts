// Token files for pretraining: a corpus tokenized once into a flat binary file of little-endian uint16 ids (uint32
// when the vocabulary does not fit 16 bits) with a JSON sidecar `<file>.json` (dtype, count, vocab, tokenizer hash,
// corpus fingerprint). Training reads windows at random offsets with fs.readSync, so a corpus larger than memory
// works and nothing is loaded whole (Node has no mmap; random access by offset is what we need from one).
//
// Corpus format: plain UTF-8 text; documents are separated by one or more blank lines (whitespace-only lines), and
// the end of a file ends a document. Lines inside a document keep their "\n". A `.jsonl` file instead holds one
// document per line as {"text": "..."} (the layout of Hugging Face text datasets). After every document the
// tokenizer's EOS id is written, so the model learns where documents end.
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { endianness } from 'node:os';
import { resolve } from 'node:path';
import { stringifyTokenizerJson, type Tokenizer } from '../tokenizer/index.js';
import { completePrefix, decodeUtf8 } from './utf8.js';

export type TokenDType = 'uint16' | 'uint32';

/** One corpus file as it was when tokenized: a changed size or mtime means the tokens are stale. */
export interface CorpusFileStamp {
  path: string;
  size: number;
  mtimeMs: number;
}

/** The sidecar `<file>.json`. */
export interface TokenFileMeta {
  format: 'instructkit-tokens';
  version: 1;
  dtype: TokenDType;
  byteOrder: 'little';
  /** Number of token ids in the file. */
  count: number;
  /** Every id is below this. */
  vocab: number;
  /** tokenizerHash() of the tokenizer that wrote the ids (empty when written without one). */
  tokenizer: string;
  documents: number;
  corpus: CorpusFileStamp[];
}

const BYTES: Record<TokenDType, number> = { uint16: 2, uint32: 4 };

if (endianness() !== 'LE') throw new Error('token files: only little-endian machines are supported');

/** uint16 when every id of a vocab of this size fits 16 bits, else uint32. */
export function tokenDTypeFor(vocab: number): TokenDType {
  return vocab <= 65535 ? 'uint16' : 'uint32';
}

/** A short content hash of a tokenizer (its tokenizer.json as saved), to tie token files to it. */
export function tokenizerHash(tokenizer: Tokenizer): string {
  return `sha256:${createHash('sha256').update(stringifyTokenizerJson(tokenizer.json)).digest('hex').slice(0, 16)}`;
}

/** The sidecar path of a token file. */
export function sidecarPath(path: string): string {
  return `${path}.json`;
}

/**
 * Checks that every corpus file exists, is a regular file and is not empty, and returns their stamps. Throws an
 * error naming the first bad file.
 */
export function stampCorpus(files: readonly string[]): CorpusFileStamp[] {
  if (files.length === 0) throw new Error('no corpus files given (--corpus FILE...)');
  return files.map((file) => {
    const path = resolve(file);
    if (!existsSync(path)) throw new Error(`${file}: corpus file not found`);
    const st = statSync(path);
    if (!st.isFile()) throw new Error(`${file}: corpus is not a regular file`);
    if (st.size === 0) throw new Error(`${file}: corpus file is empty`);
    return { path, size: st.size, mtimeMs: st.mtimeMs };
  });
}

/** A piece of a document; `endOfDocument` marks its last piece. */
export interface CorpusPiece {
  text: string;
  endOfDocument: boolean;
}

export interface ReadDocumentsOptions {
  /** Bytes read per fs.readSync call. */
  chunkBytes?: number;
  /**
   * A document longer than this (in characters) is handed out in pieces cut at line ends, so one huge document
   * is never held whole.
   */
  maxPieceChars?: number;
}

// The lines of a file ("\n" or "\r\n" endings), read chunk by chunk: only one chunk and one line are in memory.
// Bytes that are not UTF-8 stop the read with the file, line and offset.
function* fileLines(file: string, chunkBytes: number): Generator<string> {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(chunkBytes + 3);
    let carry = 0; // bytes of a character cut by the previous chunk's end, at the start of buf
    const at = { offset: 0, lines: 0 };
    let partial = ''; // an unfinished last line
    for (;;) {
      const n = readSync(fd, buf, carry, chunkBytes, null);
      const bytes = buf.subarray(0, carry + n);
      const end = n > 0 ? completePrefix(bytes) : bytes.length;
      const lines = (partial + decodeUtf8(bytes.subarray(0, end), file, at)).split('\n');
      at.offset += end;
      at.lines += lines.length - 1;
      partial = n > 0 ? lines.pop()! : '';
      for (const line of lines) yield line.endsWith('\r') ? line.slice(0, -1) : line;
      if (n === 0) return;
      carry = bytes.length - end;
      buf.copyWithin(0, end, bytes.length);
    }
  } finally {
    closeSync(fd);
  }
}

// One document per {"text"} line; a bad line stops the read with file:line and the fix.
function* jsonlDocuments(file: string, chunkBytes: number): Generator<CorpusPiece> {
  let lineNo = 0;
  for (const line of fileLines(file, chunkBytes)) {
    lineNo++;
    if (line.trim() === '') continue;
    let text: unknown;
    try {
      text = (JSON.parse(line) as { text?: unknown }).text;
    } catch {
      text = undefined;
    }
    if (typeof text !== 'string')
      throw new Error(
        `${file}:${lineNo}: a .jsonl corpus needs {"text": "..."} on every line (plain text goes in another extension)`,
      );
    if (text.trim() !== '') yield { text, endOfDocument: true };
  }
}

/**
 * Streams the documents of the corpus files in order (see the format at the top of this file): only the current
 * chunk and document are in memory.
 */
export function* readDocuments(files: readonly string[], opts: ReadDocumentsOptions = {}): Generator<CorpusPiece> {
  const chunkBytes = opts.chunkBytes ?? 1 << 20;
  const maxPieceChars = opts.maxPieceChars ?? 1 << 20;
  for (const file of files) {
    if (file.endsWith('.jsonl')) {
      yield* jsonlDocuments(file, chunkBytes);
      continue;
    }
    let lines: string[] = [];
    let chars = 0;
    const piece = (endOfDocument: boolean): CorpusPiece => {
      // A piece cut inside a document ends at a line end, so it keeps that "\n".
      const text = lines.join('\n') + (endOfDocument ? '' : '\n');
      lines = [];
      chars = 0;
      return { text, endOfDocument };
    };
    for (const line of fileLines(file, chunkBytes)) {
      if (line.trim() === '') {
        if (lines.length > 0) yield piece(true);
        continue;
      }
      // Cut before a line that continues a long document, so the last piece always ends it.
      if (chars > maxPieceChars) yield piece(false);
      lines.push(line);
      chars += line.length + 1;
    }
    if (lines.length > 0) yield piece(true);
  }
}

/** Writes ids to a token file, buffered; the file appears (with its sidecar) only when finish() completes. */
export class TokenWriter {
  readonly dtype: TokenDType;
  #count = 0;
  #fill = 0;
  readonly #buf: Uint16Array | Uint32Array;
  readonly #tmp: string;
  #fd: number | null;

  constructor(
    readonly path: string,
    readonly vocab: number,
  ) {
    // Ids are read back into Int32Arrays, so they stay below 2^31.
    if (!Number.isInteger(vocab) || vocab < 1 || vocab > 2 ** 31)
      throw new RangeError(`TokenWriter: vocab ${vocab} must be an integer in [1, 2^31]`);
    this.dtype = tokenDTypeFor(vocab);
    this.#buf = this.dtype === 'uint16' ? new Uint16Array(1 << 16) : new Uint32Array(1 << 16);
    this.#tmp = `${path}.tmp-${process.pid}`;
    this.#fd = openSync(this.#tmp, 'w');
  }

  get count(): number {
    return this.#count + this.#fill;
  }

  write(ids: readonly number[] | Int32Array): void {
    if (this.#fd === null) throw new Error(`${this.path}: TokenWriter is closed`);
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocab)
        throw new RangeError(`${this.path}: token id ${id} is outside the vocabulary [0, ${this.vocab})`);
      this.#buf[this.#fill++] = id;
      if (this.#fill === this.#buf.length) this.#flush();
    }
  }

  #flush(): void {
    const bytes = new Uint8Array(this.#buf.buffer, 0, this.#fill * BYTES[this.dtype]);
    for (let off = 0; off < bytes.length; ) off += writeSync(this.#fd!, bytes, off);
    this.#count += this.#fill;
    this.#fill = 0;
  }

  /** Flushes, moves the file into place and writes its sidecar. */
  finish(info: { tokenizer: string; documents: number; corpus: CorpusFileStamp[] }): TokenFileMeta {
    this.#flush();
    closeSync(this.#fd!);
    this.#fd = null;
    renameSync(this.#tmp, this.path);
    const meta: TokenFileMeta = {
      format: 'instructkit-tokens',
      version: 1,
      dtype: this.dtype,
      byteOrder: 'little',
      count: this.#count,
      vocab: this.vocab,
      ...info,
    };
    const side = sidecarPath(this.path);
    writeFileSync(`${side}.tmp-${process.pid}`, `${JSON.stringify(meta, null, 2)}\n`);
    renameSync(`${side}.tmp-${process.pid}`, side);
    return meta;
  }

  /** Closes and deletes the unfinished file. */
  abort(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
    rmSync(this.#tmp, { force: true });
  }
}

// Each piece's ids, EOS after each document; counts the documents.
function* documentIds(files: readonly string[], tokenizer: Tokenizer, counter: { documents: number }) {
  for (const piece of readDocuments(files)) {
    yield tokenizer.encode(piece.text, { addSpecialTokens: false });
    if (piece.endOfDocument) {
      counter.documents++;
      if (tokenizer.eosId !== null) yield [tokenizer.eosId];
    }
  }
  if (counter.documents === 0) throw new Error(`${files.join(', ')}: the corpus holds no text (only blank lines)`);
}

/**
 * Tokenizes the corpus files into `path` (one document at a time, EOS after each) and returns the sidecar.
 * Throws when the corpus holds no text.
 */
export function tokenizeCorpus(files: readonly string[], tokenizer: Tokenizer, path: string): TokenFileMeta {
  const corpus = stampCorpus(files);
  const writer = new TokenWriter(path, tokenizer.vocabSize);
  const counter = { documents: 0 };
  try {
    for (const ids of documentIds(
      corpus.map((c) => c.path),
      tokenizer,
      counter,
    ))
      writer.write(ids);
  } catch (e) {
    writer.abort();
    throw e;
  }
  return writer.finish({ tokenizer: tokenizerHash(tokenizer), documents: counter.documents, corpus });
}

/** The corpus's token ids in memory, read exactly as pretraining reads it (for PPO-ptx's pretraining mix). */
export function corpusTokens(files: readonly string[], tokenizer: Tokenizer): number[] {
  const corpus = stampCorpus(files);
  const out: number[] = [];
  for (const ids of documentIds(
    corpus.map((c) => c.path),
    tokenizer,
    { documents: 0 },
  ))
    for (const id of ids) out.push(id);
  return out;
}

/** Reads a sidecar, checking its fields; `null` when it does not exist. */
export function readTokenMeta(path: string): TokenFileMeta | null {
  const side = sidecarPath(path);
  if (!existsSync(side)) return null;
  let meta: TokenFileMeta;
  try {
    meta = JSON.parse(readFileSync(side, 'utf8'));
  } catch (e) {
    throw new Error(`${side}: not valid JSON (${(e as Error).message})`);
  }
  if (meta?.format !== 'instructkit-tokens') throw new Error(`${side}: field "format" must be "instructkit-tokens"`);
  if (meta.dtype !== 'uint16' && meta.dtype !== 'uint32')
    throw new Error(`${side}: field "dtype" must be "uint16" or "uint32", got ${JSON.stringify(meta.dtype)}`);
  for (const key of ['count', 'vocab'] as const)
    if (!Number.isInteger(meta[key]) || meta[key] < 0)
      throw new Error(`${side}: field "${key}" must be an integer >= 0, got ${JSON.stringify(meta[key])}`);
  return meta;
}

/** Random access to the ids of a token file by offset; only the windows asked for are read. */
export class TokenFile {
  readonly count: number;
  readonly #width: number;
  #fd: number | null;

  private constructor(
    readonly path: string,
    readonly meta: TokenFileMeta,
    fd: number,
  ) {
    this.count = meta.count;
    this.#width = BYTES[meta.dtype];
    this.#fd = fd;
  }

  static open(path: string): TokenFile {
    const meta = readTokenMeta(path);
    if (meta === null) throw new Error(`${sidecarPath(path)}: token file sidecar not found`);
    if (!existsSync(path)) throw new Error(`${path}: token file not found`);
    const fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    if (size !== meta.count * BYTES[meta.dtype]) {
      closeSync(fd);
      throw new Error(
        `${path}: holds ${size} bytes, but ${sidecarPath(path)} says "count" ${meta.count} × ${BYTES[meta.dtype]} bytes (${meta.dtype})`,
      );
    }
    return new TokenFile(path, meta, fd);
  }

  /** Ids [start, start + length) into `out` at `outOffset` (a fresh array when out is not given). */
  read(start: number, length: number, out?: Int32Array, outOffset = 0): Int32Array {
    if (this.#fd === null) throw new Error(`${this.path}: token file is closed`);
    if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > this.count)
      throw new RangeError(`${this.path}: window [${start}, ${start + length}) is outside [0, ${this.count})`);
    const target = out ?? new Int32Array(length);
    if (outOffset + length > target.length)
      throw new RangeError(`${this.path}: ${length} ids do not fit the output at offset ${outOffset}`);
    const bytes = new Uint8Array(length * this.#width);
    for (let off = 0; off < bytes.length; ) {
      const n = readSync(this.#fd, bytes, off, bytes.length - off, start * this.#width + off);
      if (n === 0) throw new Error(`${this.path}: file ended early (truncated since it was opened?)`);
      off += n;
    }
    const ids = this.#width === 2 ? new Uint16Array(bytes.buffer) : new Uint32Array(bytes.buffer);
    target.set(ids, outOffset);
    return target;
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }
}
