// GGUF export: llama.cpp's single-file format (header, typed key/value metadata, tensor infos, aligned data), so a
// model trained here runs in llama.cpp, node-llama-cpp, Ollama or LM Studio. Tensor names, metadata keys and the
// Llama q/k row order are those llama.cpp's own converter (convert_hf_to_gguf.py) writes.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { native, ropeFrequencies, type Tensor } from '../tensor/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { GPT2 } from './gpt2.js';
import type { CausalLM } from './hf.js';
import { ropeInvFreq } from './rope_scaling.js';

export type GgufDType = 'f32' | 'bf16' | 'q8_0';
export const GGUF_DTYPES: readonly GgufDType[] = ['f32', 'bf16', 'q8_0'];

// ggml tensor types and llama.cpp file types (llama_ftype) of each export dtype.
const GGML_F32 = 0;
const GGML_TYPE: Record<GgufDType, number> = { f32: GGML_F32, bf16: 30, q8_0: 8 };
const FILE_TYPE: Record<GgufDType, number> = { f32: 0, bf16: 32, q8_0: 7 };
const ALIGNMENT = 32;
const Q8_BLOCK = 32;

// GGUF metadata value types.
enum T {
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
}
type Meta =
  | { type: T.U32 | T.I32 | T.F32; value: number }
  | { type: T.BOOL; value: boolean }
  | { type: T.STRING; value: string }
  | { type: T.ARRAY; of: T.STRING; value: string[] }
  | { type: T.ARRAY; of: T.I32; value: number[] };

const u32 = (value: number): Meta => ({ type: T.U32, value });
const f32 = (value: number): Meta => ({ type: T.F32, value });
const str = (value: string): Meta => ({ type: T.STRING, value });

/** One tensor as GGUF stores it: torch-order shape (row-major), values as f32 or bf16, and the type to write. */
interface Entry {
  name: string;
  shape: number[];
  values: Float32Array | Uint16Array;
  type: number;
}

/** What an export could not express, found before anything is written. */
export class GgufExportError extends Error {}

function fail(msg: string): never {
  throw new GgufExportError(msg);
}

// ---- tokenizer metadata (byte-level BPE, tokenizer.ggml.model "gpt2") ----

const PRE_TOKENIZERS: [string, string][] = [
  // Split regexes of Llama 3 and Qwen2 (their pre_tokenizer is Sequence[Split, ByteLevel without regex])
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    'llama-bpe',
  ],
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    'qwen2',
  ],
];

type Json = Record<string, unknown>;

/** llama.cpp's name for a tokenizer.json pre-tokenizer (tokenizer.ggml.pre), or an error naming the field. */
function preTokenizerName(pre: unknown, source: string): string {
  const node = pre as Json | null;
  if (node?.type === 'ByteLevel' && node.use_regex !== false) return 'gpt-2';
  const list = node?.type === 'Sequence' ? (node.pretokenizers as Json[]) : [];
  if (list.length === 2 && list[1]?.type === 'ByteLevel') {
    const first = list[0];
    if (first?.type === 'Digits' && first.individual_digits === true && list[1].use_regex !== false) return 'smollm';
    const regex = (first?.pattern as Json | undefined)?.Regex;
    const hit = PRE_TOKENIZERS.find(([r]) => r === regex);
    if (first?.type === 'Split' && hit) return hit[1];
  }
  return fail(
    `${source}: field "pre_tokenizer" is ${JSON.stringify(pre).slice(0, 200)}, which has no llama.cpp pre-tokenizer ` +
      "name (GGUF export knows GPT-2's ByteLevel, Llama 3's and Qwen2's Split regex, and SmolLM's digits)",
  );
}

function tokenizerMeta(tok: Tokenizer, vocabSize: number, source: string): Map<string, Meta> {
  if (tok.vocabSize > vocabSize)
    fail(`${source}: the tokenizer has ${tok.vocabSize} ids, more than the model's vocab_size ${vocabSize}`);
  const pre = preTokenizerName(tok.json.pre_tokenizer, source);
  // Ids the tokenizer does not use (a vocabulary padded to a round size) become unused placeholders, as
  // llama.cpp's converter writes them. Token types: 1 normal, 3 control (special), 4 user-defined, 5 unused.
  const tokens: string[] = [];
  const types: number[] = [];
  const added = new Map(tok.json.added_tokens.map((t) => [t.id, t]));
  for (let id = 0; id < vocabSize; id++) {
    const text = tok.idToToken(id);
    tokens.push(text ?? `[PAD${id}]`);
    const a = added.get(id);
    types.push(text === null ? 5 : a ? (a.special ? 3 : 4) : 1);
  }
  const merges = tok.json.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const meta = new Map<string, Meta>([
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str(pre)],
    ['tokenizer.ggml.tokens', { type: T.ARRAY, of: T.STRING, value: tokens }],
    ['tokenizer.ggml.token_type', { type: T.ARRAY, of: T.I32, value: types }],
    ['tokenizer.ggml.merges', { type: T.ARRAY, of: T.STRING, value: merges }],
  ]);
  const ids: [string, number | null][] = [
    ['bos_token_id', tok.bosId],
    ['eos_token_id', tok.eosId],
    ['unknown_token_id', tok.unkId],
    ['padding_token_id', tok.padId],
  ];
  for (const [key, id] of ids) if (id !== null) meta.set(`tokenizer.ggml.${key}`, u32(id));
  // Whether encoding adds BOS (Llama 3's post-processor does; GPT-2's adds nothing).
  const withSpecial = tok.encode('a');
  const plain = tok.encode('a', { addSpecialTokens: false });
  meta.set('tokenizer.ggml.add_bos_token', {
    type: T.BOOL,
    value: tok.bosId !== null && withSpecial.length > plain.length && withSpecial[0] === tok.bosId,
  });
  if (tok.chatTemplate) meta.set('tokenizer.chat_template', str(tok.chatTemplate.source));
  return meta;
}

// ---- architectures ----

function transposed(t: Tensor): Float32Array | Uint16Array {
  const [rows, cols] = t.shape;
  const src = t.buffer as Float32Array | Uint16Array;
  const out = src instanceof Float32Array ? new Float32Array(src.length) : new Uint16Array(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return out;
}

// HF Llama rotates dim i with i + hd/2 within each head; llama.cpp's llama architecture rotates adjacent pairs, so
// its converter interleaves the two halves of every head's rows of q and k (weights and biases alike).
function interleaveHeads(t: Tensor, heads: number): Float32Array | Uint16Array {
  const src = t.buffer as Float32Array | Uint16Array;
  const rowLen = t.ndim === 2 ? t.shape[1] : 1;
  const hd = t.shape[0] / heads;
  const out = src instanceof Float32Array ? new Float32Array(src.length) : new Uint16Array(src.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < hd / 2; i++)
      for (let j = 0; j < 2; j++) {
        const from = (h * hd + j * (hd / 2) + i) * rowLen;
        out.set(src.subarray(from, from + rowLen), (h * hd + 2 * i + j) * rowLen);
      }
  return out;
}

interface Plan {
  arch: string;
  meta: Map<string, Meta>;
  tensors: { name: string; shape: number[]; values: () => Float32Array | Uint16Array }[];
}

function gpt2Plan(model: GPT2): Plan {
  const c = model.config;
  if (c.activation !== 'gelu_new')
    fail(
      'config.json: field "activation_function" is "gelu" (exact GELU); GGUF\'s gpt2 architecture computes the tanh ' +
        'approximation (gelu_new) and cannot express it',
    );
  const meta = new Map<string, Meta>([
    ['gpt2.context_length', u32(c.nPositions)],
    ['gpt2.embedding_length', u32(c.nEmbd)],
    ['gpt2.feed_forward_length', u32(c.nInner ?? 4 * c.nEmbd)],
    ['gpt2.block_count', u32(c.nLayer)],
    ['gpt2.attention.head_count', u32(c.nHead)],
    ['gpt2.attention.layer_norm_epsilon', f32(c.layerNormEpsilon)],
  ]);
  const rename: [RegExp, string][] = [
    [/^wte\./, 'token_embd.'],
    [/^wpe\./, 'position_embd.'],
    [/^h\.(\d+)\.ln_1\./, 'blk.$1.attn_norm.'],
    [/^h\.(\d+)\.attn\.c_attn\./, 'blk.$1.attn_qkv.'],
    [/^h\.(\d+)\.attn\.c_proj\./, 'blk.$1.attn_output.'],
    [/^h\.(\d+)\.ln_2\./, 'blk.$1.ffn_norm.'],
    [/^h\.(\d+)\.mlp\.c_fc\./, 'blk.$1.ffn_up.'],
    [/^h\.(\d+)\.mlp\.c_proj\./, 'blk.$1.ffn_down.'],
    [/^ln_f\./, 'output_norm.'],
    [/^lm_head\./, 'output.'],
  ];
  const tensors = model.namedParameters().map(([name, t]) => {
    const rule = rename.find(([re]) => re.test(name));
    if (!rule) return fail(`GPT-2 parameter "${name}" has no GGUF name`);
    // Conv1D weights are stored [in, out]; GGUF holds every projection as [out, in], as a Linear's.
    const conv = /\.(c_attn|c_proj|c_fc)\.weight$/.test(name);
    return {
      name: name.replace(rule[0], rule[1]),
      shape: conv ? [t.shape[1], t.shape[0]] : [...t.shape],
      values: () => (conv ? transposed(t) : (t.buffer as Float32Array | Uint16Array)),
    };
  });
  return { arch: 'gpt2', meta, tensors };
}

function llamaPlan(model: Exclude<CausalLM, GPT2>): Plan {
  const c = model.config;
  const window = (c as { slidingWindow?: number | null }).slidingWindow;
  if (window != null && window < c.maxPositions)
    fail(
      `config.json: field "sliding_window" is ${window}; GGUF's llama architecture attends over the whole context ` +
        'and cannot express a sliding window',
    );
  const qwen = c.qkvBias && !c.oBias;
  const arch = qwen ? 'qwen2' : 'llama';
  const meta = new Map<string, Meta>([
    [`${arch}.vocab_size`, u32(c.vocabSize)],
    [`${arch}.context_length`, u32(c.maxPositions)],
    [`${arch}.embedding_length`, u32(c.hiddenSize)],
    [`${arch}.feed_forward_length`, u32(c.intermediateSize)],
    [`${arch}.block_count`, u32(c.numLayers)],
    [`${arch}.attention.head_count`, u32(c.numHeads)],
    [`${arch}.attention.head_count_kv`, u32(c.numKvHeads)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(c.rmsNormEps)],
    [`${arch}.rope.freq_base`, f32(c.ropeTheta)],
    [`${arch}.rope.dimension_count`, u32(c.headDim)],
  ]);
  if (c.headDim * c.numHeads !== c.hiddenSize) {
    meta.set(`${arch}.attention.key_length`, u32(c.headDim));
    meta.set(`${arch}.attention.value_length`, u32(c.headDim));
  }
  const scaling = c.ropeScaling ?? null;
  const extra: Plan['tensors'] = [];
  if (scaling?.type === 'linear') {
    meta.set(`${arch}.rope.scaling.type`, str('linear'));
    meta.set(`${arch}.rope.scaling.factor`, f32(scaling.factor));
  } else if (scaling?.type === 'llama3') {
    // As llama.cpp's converter: one divisor per frequency in a rope_freqs tensor.
    const base = ropeFrequencies(c.ropeTheta, c.headDim);
    const scaled = ropeInvFreq({ theta: c.ropeTheta, scaling }, c.headDim);
    const factors = base.map((f, i) => f / scaled[i]);
    extra.push({ name: 'rope_freqs.weight', shape: [factors.length], values: () => factors });
  }
  const rename: [RegExp, string][] = [
    [/^model\.embed_tokens\./, 'token_embd.'],
    [/^model\.layers\.(\d+)\.input_layernorm\./, 'blk.$1.attn_norm.'],
    [/^model\.layers\.(\d+)\.self_attn\.q_proj\./, 'blk.$1.attn_q.'],
    [/^model\.layers\.(\d+)\.self_attn\.k_proj\./, 'blk.$1.attn_k.'],
    [/^model\.layers\.(\d+)\.self_attn\.v_proj\./, 'blk.$1.attn_v.'],
    [/^model\.layers\.(\d+)\.self_attn\.o_proj\./, 'blk.$1.attn_output.'],
    [/^model\.layers\.(\d+)\.post_attention_layernorm\./, 'blk.$1.ffn_norm.'],
    [/^model\.layers\.(\d+)\.mlp\.gate_proj\./, 'blk.$1.ffn_gate.'],
    [/^model\.layers\.(\d+)\.mlp\.up_proj\./, 'blk.$1.ffn_up.'],
    [/^model\.layers\.(\d+)\.mlp\.down_proj\./, 'blk.$1.ffn_down.'],
    [/^model\.norm\./, 'output_norm.'],
    [/^lm_head\./, 'output.'],
  ];
  const tensors = model.namedParameters().map(([name, t]) => {
    const rule = rename.find(([re]) => re.test(name));
    if (!rule) return fail(`Llama parameter "${name}" has no GGUF name (is it a LoRA adapter? merge it first)`);
    const heads = /\.q_proj\./.test(name) ? c.numHeads : /\.k_proj\./.test(name) ? c.numKvHeads : 0;
    return {
      name: name.replace(rule[0], rule[1]),
      shape: [...t.shape],
      values: () => (heads && !qwen ? interleaveHeads(t, heads) : (t.buffer as Float32Array | Uint16Array)),
    };
  });
  return { arch, meta, tensors: [...tensors, ...extra] };
}

// ---- encoding ----

function f32ToF16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  let mant = u & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let h = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h;
}

function asF32(values: Float32Array | Uint16Array): Float32Array {
  if (values instanceof Float32Array) return values;
  const out = new Float32Array(values.length);
  native.fromBf16(values, out);
  return out;
}

/** Q8_0: blocks of 32 values as an f16 scale (max |x| / 127) and 32 signed bytes, as ggml's reference quantizer. */
function quantizeQ8(values: Float32Array): Uint8Array {
  const blocks = values.length / Q8_BLOCK;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < Q8_BLOCK; i++) amax = Math.max(amax, Math.abs(values[b * Q8_BLOCK + i]));
    const d = Math.fround(amax / 127); // f32 arithmetic, as ggml
    const inv = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 34, f32ToF16(d), true);
    for (let i = 0; i < Q8_BLOCK; i++) {
      const q = Math.fround(values[b * Q8_BLOCK + i] * inv);
      view.setInt8(b * 34 + 2 + i, Math.sign(q) * Math.round(Math.abs(q))); // halves away from zero, as roundf
    }
  }
  return out;
}

function encodeTensor(e: Entry): Uint8Array {
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (e.type === GGML_F32) return bytes(asF32(e.values));
  if (e.type === GGML_TYPE.bf16) {
    if (e.values instanceof Uint16Array) return bytes(e.values);
    const out = new Uint16Array(e.values.length);
    native.toBf16(e.values, out);
    return bytes(out);
  }
  return quantizeQ8(asF32(e.values));
}

function byteSize(e: { type: number; shape: number[] }): number {
  const n = e.shape.reduce((a, b) => a * b, 1);
  return e.type === GGML_F32 ? n * 4 : e.type === GGML_TYPE.bf16 ? n * 2 : (n / Q8_BLOCK) * 34;
}

class Bytes {
  private readonly parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  value(m: Meta): void {
    this.u32(m.type);
    if (m.type === T.BOOL) this.push(Buffer.from([m.value ? 1 : 0]));
    else if (m.type === T.STRING) this.string(m.value);
    else if (m.type === T.ARRAY) {
      this.u32(m.of);
      this.u64(m.value.length);
      if (m.of === T.STRING) for (const s of m.value) this.string(s);
      else {
        const arr = Buffer.alloc(4 * m.value.length);
        m.value.forEach((v, i) => {
          arr.writeInt32LE(v, 4 * i);
        });
        this.push(arr);
      }
    } else {
      const b = Buffer.alloc(4);
      if (m.type === T.U32) b.writeUInt32LE(m.value);
      else if (m.type === T.I32) b.writeInt32LE(m.value);
      else b.writeFloatLE(m.value);
      this.push(b);
    }
  }
  concat(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const pad = (n: number) => (ALIGNMENT - (n % ALIGNMENT)) % ALIGNMENT;

export interface GgufExportOptions {
  dtype?: GgufDType;
  /** general.name (default: the architecture). */
  name?: string;
}

/**
 * Writes `model` with its tokenizer as a GGUF file at `path`. Everything is checked before the file is opened (an
 * architecture GGUF cannot express, an unknown dtype, a tokenizer llama.cpp cannot rebuild: a GgufExportError);
 * the file is written beside `path` and renamed into place, so a failed export never leaves a torn file.
 * `source` names the model in errors. With dtype bf16 or q8_0 the matrices are converted (q8_0 where a row is a
 * whole number of 32-value blocks); vectors (norms, biases) stay f32, as llama.cpp's converter writes them.
 */
export function exportGguf(
  model: CausalLM,
  tokenizer: Tokenizer,
  path: string,
  opts: GgufExportOptions = {},
  source = 'model',
): void {
  const dtype = opts.dtype ?? 'f32';
  if (!GGUF_DTYPES.includes(dtype))
    fail(`GGUF dtype ${JSON.stringify(dtype)} is not supported (use one of ${GGUF_DTYPES.join(', ')})`);
  const plan = model instanceof GPT2 ? gpt2Plan(model) : llamaPlan(model);
  const meta = new Map<string, Meta>([
    ['general.architecture', str(plan.arch)],
    ['general.name', str(opts.name ?? plan.arch)],
    ['general.file_type', u32(FILE_TYPE[dtype])],
    ...plan.meta,
    ...tokenizerMeta(tokenizer, model.config.vocabSize, source),
  ]);
  if (dtype === 'q8_0') meta.set('general.quantization_version', u32(2));
  const entries = plan.tensors.map((t) => {
    const matrix = t.shape.length === 2;
    const type =
      !matrix || dtype === 'f32' || (dtype === 'q8_0' && t.shape[1] % Q8_BLOCK !== 0) ? GGML_F32 : GGML_TYPE[dtype];
    return { ...t, type };
  });

  const head = new Bytes();
  head.push(Buffer.from('GGUF', 'ascii'));
  head.u32(3);
  head.u64(entries.length);
  head.u64(meta.size);
  for (const [key, value] of meta) {
    head.string(key);
    head.value(value);
  }
  let offset = 0;
  for (const e of entries) {
    head.string(e.name);
    head.u32(e.shape.length);
    for (const d of [...e.shape].reverse()) head.u64(d); // ggml lists the contiguous axis first
    head.u32(e.type);
    head.u64(offset);
    offset += byteSize(e);
    offset += pad(offset);
  }
  const header = head.concat();

  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let open = true;
  try {
    writeSync(fd, header);
    writeSync(fd, Buffer.alloc(pad(header.length)));
    for (const e of entries) {
      const data = encodeTensor({ ...e, values: e.values() });
      writeSync(fd, data);
      writeSync(fd, Buffer.alloc(pad(data.length)));
    }
    fsyncSync(fd);
    closeSync(fd);
    open = false;
    renameSync(tmp, path);
  } catch (err) {
    if (open) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}
