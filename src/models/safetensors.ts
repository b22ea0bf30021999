// The safetensors format: u64 little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
// then the raw little-endian data. Tensors are read straight into their own buffers: never two copies in memory.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { type DType, Tensor } from '../tensor/index.js';

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Reads the header and checks every entry against the file before any data is read. */
export function readHeader(path: string): {
  entries: Map<string, Entry>;
  dataStart: number;
  metadata: Record<string, string>;
} {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const fail = (msg: string): never => {
      throw new Error(`${path}: not a valid safetensors file: ${msg}`);
    };
    if (size < 8) fail(`file is ${size} bytes, shorter than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > size - 8 || headerLen > 100_000_000)
      fail(`header length ${headerLen} exceeds the file (${size} bytes)`);
    const headerBuf = Buffer.alloc(headerLen);
    readSync(fd, headerBuf, 0, headerLen, 8);
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(headerBuf.toString('utf8'));
    } catch (e) {
      return fail(`header is not JSON (${(e as Error).message})`);
    }
    const dataStart = 8 + headerLen;
    const dataLen = size - dataStart;
    const entries = new Map<string, Entry>();
    let metadata: Record<string, string> = {};
    const spans: [number, number, string][] = [];
    for (const [name, value] of Object.entries(raw)) {
      if (name === '__metadata__') {
        metadata = value as Record<string, string>;
        continue;
      }
      const e = value as Entry;
      const where = `tensor "${name}"`;
      if (!e || typeof e !== 'object') fail(`${where} has no header entry object`);
      if (!(e.dtype in BYTES))
        fail(`${where} has unsupported dtype ${JSON.stringify(e.dtype)} (F32, F16, BF16, I32, I64)`);
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0))
        fail(`${where} has an invalid shape ${JSON.stringify(e.shape)}`);
      const [begin, end] = Array.isArray(e.data_offsets) ? e.data_offsets : [Number.NaN, Number.NaN];
      if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin)
        fail(`${where} has invalid data_offsets ${JSON.stringify(e.data_offsets)}`);
      if (end > dataLen) fail(`${where} data_offsets end ${end} beyond the data (${dataLen} bytes): file truncated?`);
      const want = e.shape.reduce((a, b) => a * b, 1) * BYTES[e.dtype];
      if (end - begin !== want)
        fail(`${where} spans ${end - begin} bytes but shape ${JSON.stringify(e.shape)} of ${e.dtype} needs ${want}`);
      spans.push([begin, end, name]);
      entries.set(name, e);
    }
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++)
      if (spans[i][0] < spans[i - 1][1]) fail(`tensors "${spans[i - 1][2]}" and "${spans[i][2]}" overlap`);
    return { entries, dataStart, metadata };
  } finally {
    closeSync(fd);
  }
}

function dtypeFor(st: string, keepBf16: boolean): DType {
  if (st === 'I32' || st === 'I64') return 'i32';
  if (st === 'BF16' && keepBf16) return 'bf16';
  return 'f32';
}

const bitsU32 = new Uint32Array(1);
const bitsF32 = new Float32Array(bitsU32.buffer);
function bf16Bits(h: number): number {
  bitsU32[0] = h << 16;
  return bitsF32[0];
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/**
 * Loads the named tensors (default all). F32 and I32 are read in place; BF16 stays bf16 when keepBf16, else
 * becomes f32; F16 becomes f32; I64 becomes i32 (values must fit).
 */
export function readSafetensors(
  path: string,
  opts: { names?: string[]; keepBf16?: boolean } = {},
): Map<string, Tensor> {
  const { entries, dataStart } = readHeader(path);
  const names = opts.names ?? [...entries.keys()];
  for (const n of names) if (!entries.has(n)) throw new Error(`${path}: no tensor named "${n}"`);
  const out = new Map<string, Tensor>();
  const fd = openSync(path, 'r');
  try {
    for (const name of names) {
      const e = entries.get(name)!;
      const t = Tensor.empty(e.shape, dtypeFor(e.dtype, opts.keepBf16 ?? false));
      const [begin, end] = e.data_offsets;
      const pos = dataStart + begin;
      const direct =
        (e.dtype === 'F32' && t.dtype === 'f32') || e.dtype === 'I32' || (e.dtype === 'BF16' && t.dtype === 'bf16');
      if (direct) {
        const b = t.buffer;
        readSync(fd, new Uint8Array(b.buffer, b.byteOffset, b.byteLength), 0, end - begin, pos);
      } else {
        // Converting dtypes reads in chunks so the raw bytes never sit beside the whole converted tensor.
        const width = BYTES[e.dtype];
        const chunk = Buffer.alloc(Math.min(end - begin, 1 << 22));
        const dst = t.buffer;
        for (let done = 0; done < end - begin; ) {
          const n = readSync(fd, chunk, 0, Math.min(chunk.length, end - begin - done), pos + done);
          for (let i = 0; i < n; i += width) {
            const k = (done + i) / width;
            if (e.dtype === 'BF16') dst[k] = bf16Bits(chunk.readUInt16LE(i));
            else if (e.dtype === 'F16') dst[k] = f16ToF32(chunk.readUInt16LE(i));
            else {
              const v = chunk.readBigInt64LE(i);
              if (v > 2147483647n || v < -2147483648n)
                throw new Error(`${path}: tensor "${name}" value ${v} does not fit in int32`);
              dst[k] = Number(v);
            }
          }
          done += n;
        }
      }
      out.set(name, t);
    }
  } catch (err) {
    for (const t of out.values()) t.dispose();
    throw err;
  } finally {
    closeSync(fd);
  }
  return out;
}

const ST_DTYPE: Record<DType, string> = { f32: 'F32', bf16: 'BF16', i32: 'I32' };

/** Writes tensors in the given order (f32 → F32, bf16 → BF16, i32 → I32). */
export function writeSafetensors(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata?: Record<string, string>,
): void {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const [name, t] of list) {
    const bytes = t.buffer.byteLength;
    header[name] = { dtype: ST_DTYPE[t.dtype], shape: [...t.shape], data_offsets: [off, off + bytes] };
    off += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const headerBuf = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, ' ')]);
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBuf.length));
  // Written beside the target and renamed into place: an interrupted save never leaves a torn file.
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, lenBuf);
    writeSync(fd, headerBuf);
    for (const [, t] of list) {
      const b = t.buffer;
      writeSync(fd, new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
