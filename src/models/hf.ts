// Hugging Face checkpoint folders: config.json + model.safetensors (or a sharded model.safetensors.index.json).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Module } from '../nn/index.js';
import { cast, noGrad, type Tensor } from '../tensor/index.js';
import { GPT2, gpt2ConfigFromHF } from './gpt2.js';
import { ScalarModel } from './heads.js';
import { Llama, llamaConfigFromHF } from './llama.js';
import { ropeToHF } from './rope_scaling.js';
import { readHeader, readSafetensors, writeSafetensors } from './safetensors.js';

export type CausalLM = GPT2 | Llama;

function readJson(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new Error(`${path}: file not found`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** Builds the model that config.json describes, with fresh weights. */
export function modelFromConfig(json: Record<string, unknown>, source: string): CausalLM {
  const type = json.model_type;
  if (type === 'gpt2') return new GPT2(gpt2ConfigFromHF(json, source));
  if (type === 'llama' || type === 'qwen2' || type === 'mistral') return new Llama(llamaConfigFromHF(json, source));
  throw new Error(
    `${source}: field "model_type" ${JSON.stringify(type)} is not supported (gpt2, llama, qwen2, mistral)`,
  );
}

// Checkpoint names that map to ours: GPT-2 checkpoints saved from GPT2LMHeadModel carry a "transformer." prefix,
// and hold causal-mask buffers that are not parameters.
function ourName(model: CausalLM, name: string): string | null {
  if (model instanceof GPT2) {
    if (/\.attn\.(masked_)?bias$/.test(name)) return null;
    if (name.startsWith('transformer.')) name = name.slice('transformer.'.length);
  }
  if (name === 'lm_head.weight' && !model.lm_head) return null; // tied: the head is the embedding
  return name;
}

function shardFiles(dir: string): string[] {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!existsSync(indexPath)) {
    const pickled = ['pytorch_model.bin', 'pytorch_model.bin.index.json'].find((f) => existsSync(join(dir, f)));
    throw new Error(
      pickled
        ? `${dir}: only ${pickled} (PyTorch pickle) is here; we read safetensors: convert it with transformers (model.save_pretrained(dir, safe_serialization=True)) or download the model's .safetensors files`
        : `${dir}: no model.safetensors or model.safetensors.index.json`,
    );
  }
  const index = readJson(indexPath);
  const map = index.weight_map as Record<string, string> | undefined;
  if (!map || typeof map !== 'object') throw new Error(`${indexPath}: field "weight_map" is missing`);
  return [...new Set(Object.values(map))].map((f) => join(dir, f));
}

/**
 * The dtype a model's matrices are held in: f32 (trainable, the default), bf16 (frozen, for sampling and frozen
 * reference or reward models: half the memory and half the bytes read per decode step), or auto: bf16 when the
 * checkpoint stores its matrices in bf16, else f32.
 */
export type LoadDType = 'f32' | 'bf16' | 'auto';

export interface LoadOptions {
  dtype?: LoadDType;
}

export const LOAD_DTYPES: readonly LoadDType[] = ['f32', 'bf16', 'auto'];

/** Whether the checkpoint in dir stores its matrices (2-d tensors) in bf16. */
export function storedAsBf16(dir: string): boolean {
  for (const file of shardFiles(dir))
    for (const e of readHeader(file).entries.values()) if (e.shape.length === 2) return e.dtype === 'BF16';
  return false;
}

/**
 * Bytes the weights of the checkpoint in dir take once loaded with `dtype` (parameter count × bytes per weight:
 * matrices in the loaded dtype, vectors always f32, as Module.toDtype keeps them), read from the headers only.
 * What a server budgets per served model; activations and the KV cache come on top.
 */
export function residentBytes(dir: string, dtype: LoadDType = 'auto'): number {
  const bf16 = resolveDType(dir, dtype) === 'bf16';
  let bytes = 0;
  for (const file of shardFiles(dir))
    for (const e of readHeader(file).entries.values()) {
      const n = e.shape.reduce((a, b) => a * b, 1);
      bytes += n * (bf16 && e.shape.length === 2 ? 2 : 4);
    }
  return bytes;
}

/** How many numbers the checkpoint in dir stores (from its headers only; no weight is read). */
export function parameterCount(dir: string): number {
  let n = 0;
  for (const file of shardFiles(dir))
    for (const e of readHeader(file).entries.values()) n += e.shape.reduce((a, b) => a * b, 1);
  return n;
}

function resolveDType(dir: string, dtype: LoadDType | undefined): 'f32' | 'bf16' {
  if (dtype === undefined || dtype === 'f32') return 'f32';
  if (dtype === 'bf16') return 'bf16';
  if (dtype === 'auto') return storedAsBf16(dir) ? 'bf16' : 'f32';
  throw new Error(`loadPretrained: dtype must be one of ${LOAD_DTYPES.join(', ')}, got ${JSON.stringify(dtype)}`);
}

/**
 * Loads a checkpoint folder, in eval mode (dropout off) as transformers does; trainers switch to train(). Every
 * header is checked and every name and shape matched against the model before any weight is read, so a bad
 * checkpoint fails with the file and field named and nothing half-loaded. `dtype` bf16 (or auto on a bf16
 * checkpoint) gives a frozen bf16 model (see Module.toDtype); bf16 tensors are then read as they are stored.
 */
export function loadPretrained(dir: string, opts: LoadOptions = {}): CausalLM {
  const configPath = join(dir, 'config.json');
  const model = modelFromConfig(readJson(configPath), configPath);
  if (resolveDType(dir, opts.dtype) === 'bf16') model.toDtype('bf16');
  loadWeights(model, model, dir);
  return model.eval();
}

/** Loads a reward or value model folder (a trunk plus `score.*`), as saved by saveScalarPretrained. */
export function loadScalarPretrained(dir: string, opts: LoadOptions = {}): ScalarModel {
  const configPath = join(dir, 'config.json');
  // A checkpoint that holds the likelihood term's weight is a reward model with that term (its value is loaded below).
  const likelihood = shardFiles(dir).some((f) => readHeader(f).entries.has('likelihood.weight')) ? 0 : null;
  const model = new ScalarModel(modelFromConfig(readJson(configPath), configPath), undefined, { likelihood });
  if (resolveDType(dir, opts.dtype) === 'bf16') model.toDtype('bf16');
  // transformers' *ForSequenceClassification heads have no bias: such a checkpoint loads with ours at zero.
  loadWeights(model, model.trunk, dir, new Set(['score.bias']));
  return model.eval();
}

function loadWeights(target: Module, trunk: CausalLM, dir: string, optional = new Set<string>()): void {
  const model = trunk;
  const own = target.stateDict();
  const files = shardFiles(dir);
  const plan: [string, string, string][] = []; // file, checkpoint name, our name
  const problems: string[] = [];
  for (const file of files) {
    const { entries } = readHeader(file);
    for (const [name, e] of entries) {
      const ours = ourName(model, name);
      if (ours === null) continue;
      const p = own.get(ours);
      if (!p) problems.push(`${file}: unexpected tensor "${name}"`);
      else if (p.shape.join() !== e.shape.join())
        problems.push(`${file}: tensor "${name}" has shape [${e.shape}], the config needs [${p.shape}]`);
      else plan.push([file, name, ours]);
    }
  }
  const found = new Set(plan.map(([, , ours]) => ours));
  const absent = [...own.keys()].filter((name) => !found.has(name));
  for (const name of absent) if (!optional.has(name)) problems.push(`${dir}: missing tensor "${name}"`);
  if (problems.length > 0) throw new Error(`cannot load ${dir}:\n  ${problems.join('\n  ')}`);
  for (const name of absent) own.get(name)!.buffer.fill(0);
  // A bf16 model reads bf16 tensors as they are stored (no f32 copy on the way).
  const keepBf16 = [...own.values()].some((t) => t.dtype === 'bf16');
  for (const file of files) {
    const names = plan.filter(([f]) => f === file);
    const loaded = readSafetensors(file, { names: names.map(([, n]) => n), keepBf16 });
    // Each tensor in its parameter's dtype (a bf16 file's norms into an f32 vector, an f32 file into a bf16 model).
    const sd = new Map<string, Tensor>(
      names.map(([, n, ours]) => [ours, noGrad(() => cast(loaded.get(n)!, own.get(ours)!.dtype))]),
    );
    target.loadStateDict(sd, { strict: false });
    for (const t of [...loaded.values(), ...sd.values()]) t.dispose();
  }
}

/** The Hugging Face config.json object of a model. */
export function hfConfigOf(model: CausalLM): Record<string, unknown> {
  if (model instanceof GPT2) {
    const c = model.config;
    return {
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      vocab_size: c.vocabSize,
      n_positions: c.nPositions,
      n_ctx: c.nPositions,
      n_embd: c.nEmbd,
      n_layer: c.nLayer,
      n_head: c.nHead,
      n_inner: c.nInner ?? null,
      activation_function: c.activation,
      layer_norm_epsilon: c.layerNormEpsilon,
      resid_pdrop: c.residPdrop,
      embd_pdrop: c.embdPdrop,
      attn_pdrop: 0,
      tie_word_embeddings: c.tieWordEmbeddings,
      ...c.tokenIds,
    };
  }
  const c = model.config;
  const qwen = c.qkvBias && !c.oBias;
  const window = c.slidingWindow ?? null;
  // A sliding window is Mistral's (every layer) or Qwen2's (from max_window_layers on); Llama has none.
  const type = qwen ? 'qwen2' : window !== null ? 'mistral' : 'llama';
  const windowFields =
    window === null
      ? {}
      : qwen
        ? { use_sliding_window: true, sliding_window: window, max_window_layers: c.maxWindowLayers ?? 0 }
        : { sliding_window: window };
  return {
    model_type: type,
    architectures: [{ qwen2: 'Qwen2ForCausalLM', mistral: 'MistralForCausalLM', llama: 'LlamaForCausalLM' }[type]],
    ...windowFields,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    rms_norm_eps: c.rmsNormEps,
    ...ropeToHF({ theta: c.ropeTheta, scaling: c.ropeScaling ?? null }),
    max_position_embeddings: c.maxPositions,
    tie_word_embeddings: c.tieWordEmbeddings,
    attention_bias: c.oBias,
    hidden_act: 'silu',
    ...c.tokenIds,
  };
}

/** How a checkpoint is written. */
export interface SaveOptions {
  /** Largest shard in bytes (default 5 GB, as transformers): bigger models go to numbered shards plus an index. */
  maxShardBytes?: number;
  /** Tensor dtype in the files (default f32); bf16 halves the size, as most published checkpoints are. */
  dtype?: 'f32' | 'bf16';
  /** The weights to write, by parameter name (default: the model's own); a LoRA model passes its merged weights. */
  weights?: Map<string, Tensor>;
}

const DEFAULT_MAX_SHARD_BYTES = 5e9;

/** Tensors grouped into consecutive shards of at most maxBytes each (a bigger tensor gets a shard of its own). */
function shardsOf(entries: [string, Tensor][], bytesPer: number, maxBytes: number): [string, Tensor][][] {
  const shards: [string, Tensor][][] = [[]];
  let size = 0;
  for (const entry of entries) {
    const bytes = entry[1].numel * bytesPer;
    if (size > 0 && size + bytes > maxBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(entry);
    size += bytes;
  }
  return shards;
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/**
 * Writes the weights as model.safetensors, or as model-0000i-of-0000n.safetensors shards plus
 * model.safetensors.index.json, then config.json. Each file is written whole and renamed into place; files of an
 * earlier save into the same folder that this one does not reuse are removed only after the new files exist.
 */
function writeFolder(
  dir: string,
  params: Map<string, Tensor>,
  config: Record<string, unknown>,
  opts: SaveOptions,
): void {
  const dtype = opts.dtype ?? 'f32';
  const maxBytes = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxBytes > 0)) throw new Error(`savePretrained: maxShardBytes must be positive, got ${maxBytes}`);
  if (dtype !== 'f32' && dtype !== 'bf16') throw new Error(`savePretrained: dtype must be f32 or bf16, got ${dtype}`);
  mkdirSync(dir, { recursive: true });
  const before = readdirSync(dir).filter((f) => /^model(-\d+-of-\d+)?\.safetensors(\.index\.json)?$/.test(f));
  const bytesPer = dtype === 'bf16' ? 2 : 4;
  const shards = shardsOf([...params], bytesPer, maxBytes);
  const written: string[] = [];
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    const n = String(shards.length).padStart(5, '0');
    const file =
      shards.length === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${n}.safetensors`;
    // bf16 copies are made one shard at a time, so a save never holds a second copy of the whole model.
    // (A model held in bf16 saves as f32 the same way.)
    const tensors = new Map(shard.map(([name, t]) => [name, t.dtype === dtype ? t : cast(t, dtype)]));
    try {
      writeSafetensors(join(dir, file), tensors, { format: 'pt' });
    } finally {
      for (const [name, t] of tensors) if (t !== params.get(name)) t.dispose();
    }
    for (const [name] of shard) weightMap[name] = file;
    written.push(file);
  });
  if (shards.length > 1) {
    const totalSize = [...params.values()].reduce((sum, t) => sum + t.numel * bytesPer, 0);
    writeAtomically(
      join(dir, 'model.safetensors.index.json'),
      `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)}\n`,
    );
    written.push('model.safetensors.index.json');
  }
  for (const f of before) if (!written.includes(f)) rmSync(join(dir, f));
  const torchDtype = dtype === 'bf16' ? 'bfloat16' : 'float32';
  writeAtomically(join(dir, 'config.json'), `${JSON.stringify({ ...config, torch_dtype: torchDtype }, null, 2)}\n`);
}

/**
 * Writes config.json and the safetensors weights so that Hugging Face transformers loads the folder, under the names
 * its own save_pretrained writes: a GPT-2 trunk under `transformer.` (GPT2LMHeadModel), a tied head left out (it is
 * the embedding).
 */
export function savePretrained(model: CausalLM, dir: string, opts: SaveOptions = {}): void {
  const weights = opts.weights ?? new Map(model.namedParameters());
  const params = new Map([...weights].map(([name, t]) => [hfParamName(model, name), t]));
  writeFolder(dir, params, hfConfigOf(model), opts);
}

const GPT2_TRUNK = new Set(['wte', 'wpe', 'h', 'ln_f']);

/**
 * A parameter's name in transformers' model with a head (GPT2ForSequenceClassification, GPT2LMHeadModel): a GPT-2
 * trunk lives under `transformer.` there; Llama-family names are already the same.
 */
export function hfParamName(trunk: CausalLM, name: string): string {
  return trunk instanceof GPT2 && GPT2_TRUNK.has(name.slice(0, name.indexOf('.'))) ? `transformer.${name}` : name;
}

/**
 * Writes a reward/value model as a *ForSequenceClassification folder with one label, named as transformers' own
 * save_pretrained names it (a checkpoint without the `transformer.` prefix would load into the GPT-2 trunk alone,
 * leaving `score` at random).
 */
export function saveScalarPretrained(model: ScalarModel, dir: string, opts: SaveOptions = {}): void {
  const config = hfConfigOf(model.trunk);
  const arch = (config.architectures as string[])[0].replace(/(LMHeadModel|ForCausalLM)$/, 'ForSequenceClassification');
  const weights = opts.weights ?? new Map(model.namedParameters());
  const params = new Map([...weights].map(([name, t]) => [hfParamName(model.trunk, name), t]));
  writeFolder(dir, params, { ...config, architectures: [arch], num_labels: 1 }, opts);
}
