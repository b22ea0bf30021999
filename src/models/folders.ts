// What a model folder holds, read from its config.json before any weight: a causal LM (what SFT trains, PPO's
// policy) or a one-label scalar-head model (a reward or value model, *ForSequenceClassification). A PEFT adapter
// folder (adapter_config.json + adapter_model.safetensors, as a LoRA run writes) stands for its base with the adapter
// merged in: the base is adapter_config.json's base_model_name_or_path read as a local folder, or the one given
// (`--base`), and it must fit the adapter.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Tokenizer } from '../tokenizer/index.js';
import { ScalarModel } from './heads.js';
import { type CausalLM, type LoadOptions, loadPretrained, loadScalarPretrained, storedAsBf16 } from './hf.js';
import { isAdapterFolder, loadAdapter, mergeAndUnload, readAdapterConfig } from './lora.js';

/** How to read a model folder: its dtype, and for an adapter folder the base to put it on (default: the recorded one). */
export interface FolderOptions extends LoadOptions {
  base?: string;
}

/**
 * The folder that holds the weights' config.json — dir itself, or an adapter folder's base — and the adapter (null
 * for a full model). A base that is not a local model folder is an error naming adapter_config.json's field.
 */
export function modelFolder(dir: string, base?: string): { configDir: string; adapter: string | null } {
  if (!existsSync(dir)) throw new Error(`${dir}: model folder not found`);
  if (existsSync(join(dir, 'config.json')) || !isAdapterFolder(dir)) {
    if (base)
      throw new Error(`--base ${base}: ${dir} is a full model folder, not an adapter folder (adapter_config.json)`);
    return { configDir: dir, adapter: null };
  }
  const path = join(dir, 'adapter_config.json');
  const recorded = readAdapterConfig(dir).baseModel;
  // A base may itself be an adapter folder (a LoRA run started from a LoRA run's output).
  const isModel = (d: string) => existsSync(join(d, 'config.json')) || isAdapterFolder(d);
  if (base) {
    if (!isModel(base))
      throw new Error(`--base ${base}: not a model folder (no config.json) to put the adapter ${dir} on`);
    return { configDir: base, adapter: dir };
  }
  // The base as recorded: a path from where training ran, or else from the adapter folder or a folder above it (a
  // training worker runs in the shared models folder, and records bases relative to it).
  const tried =
    recorded === null ? [] : isAbsolute(recorded) ? [recorded] : [resolve(recorded), ...aboveAndAt(dir, recorded)];
  const found = tried.find(isModel);
  if (!found) {
    const where =
      recorded !== null && !isAbsolute(recorded)
        ? ` (looked in ${process.cwd()}, in ${resolve(dir)} and in each folder above it)`
        : '';
    throw new Error(
      `${path}: field "base_model_name_or_path" is ${JSON.stringify(recorded)}, which is not a local model folder` +
        `${where}; give the base model folder with --base`,
    );
  }
  return { configDir: found, adapter: dir };
}

/** `rel` joined to `dir` and to each folder above it, nearest first. */
function aboveAndAt(dir: string, rel: string): string[] {
  const out: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    out.push(join(d, rel));
    if (dirname(d) === d) return out;
  }
}

/** The folder whose tokenizer.json a model uses: its own, or an adapter folder's base's. */
export function tokenizerFolder(dir: string, base?: string): string {
  if (existsSync(join(dir, 'tokenizer.json'))) return dir;
  const { configDir, adapter } = modelFolder(dir, base);
  return adapter ? tokenizerFolder(configDir) : dir;
}

// bf16 asked for, or auto on a base stored in bf16 (the merge itself runs in f32).
function wantsBf16(configDir: string, opts: LoadOptions): boolean {
  if (opts.dtype === 'bf16') return true;
  return opts.dtype === 'auto' && existsSync(join(configDir, 'config.json')) && storedAsBf16(configDir);
}

// The adapter put on its base and merged in; a misfit names the adapter's tensors and the base.
function mergeAdapter<M extends CausalLM | ScalarModel>(model: M, adapter: string, base: string): M {
  try {
    loadAdapter(model, adapter);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n  (base model: ${base}; give the right one with --base)`);
  }
  mergeAndUnload(model);
  return model;
}

/** Loads a causal LM folder, or an adapter folder merged into its base (in eval mode; dtype as loadPretrained). */
export function loadModelFolder(dir: string, opts: FolderOptions = {}): CausalLM {
  const { configDir, adapter } = modelFolder(dir, opts.base);
  if (!adapter) return loadPretrained(dir, opts);
  const merged = mergeAdapter(loadModelFolder(configDir), adapter, configDir);
  if (wantsBf16(configDir, opts)) merged.toDtype('bf16');
  return merged.eval();
}

/**
 * Loads a reward/value model folder, or an adapter folder (a LoRA reward model: adapters and its `score` head) merged
 * into its base — a causal LM (the SFT model it started from) or a scalar model.
 */
export function loadScalarFolder(dir: string, opts: FolderOptions = {}): ScalarModel {
  const { configDir, adapter } = modelFolder(dir, opts.base);
  if (!adapter) return loadScalarPretrained(dir, opts);
  const likelihood = readAdapterConfig(adapter).modulesToSave.includes('likelihood') ? 0 : null;
  const base =
    folderKind(configDir) === 'scalar'
      ? loadScalarFolder(configDir)
      : new ScalarModel(loadModelFolder(configDir), undefined, { likelihood });
  const merged = mergeAdapter(base, adapter, configDir);
  if (wantsBf16(configDir, opts)) merged.toDtype('bf16');
  return merged.eval();
}

export type FolderKind = 'causal' | 'scalar';

/**
 * The kind of a model folder; errors name the file and field (a missing folder, config.json or model_type). An adapter
 * folder is what its task_type says (SEQ_CLS: a reward/value model), its base checked to exist.
 */
export function folderKind(dir: string, base?: string): FolderKind {
  const { configDir, adapter } = modelFolder(dir, base);
  if (!adapter) return folderKindOf(dir);
  const baseKind = folderKind(configDir);
  const json = JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8'));
  return json.task_type === 'SEQ_CLS' ? 'scalar' : baseKind;
}

function folderKindOf(dir: string): FolderKind {
  const path = join(dir, 'config.json');
  if (!existsSync(dir)) throw new Error(`${dir}: model folder not found`);
  if (!existsSync(path)) throw new Error(`${path}: file not found; ${dir} is not a model folder`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || typeof json.model_type !== 'string')
    throw new Error(`${path}: field "model_type" is missing; ${dir} is not a model folder`);
  const arch = Array.isArray(json.architectures) ? String(json.architectures[0]) : '';
  if (!/ForSequenceClassification$/.test(arch)) return 'causal';
  if (json.num_labels !== undefined && json.num_labels !== 1)
    throw new Error(`${path}: field "num_labels" is ${json.num_labels}, a reward model has 1`);
  return 'scalar';
}

/** Throws unless dir is a model folder of the wanted kind, naming the file and field. */
export function checkModelFolder(dir: string, want: FolderKind, base?: string): void {
  const kind = folderKind(dir, base);
  const path = join(dir, modelFolder(dir, base).adapter ? 'adapter_config.json' : 'config.json');
  if (want === 'causal' && kind === 'scalar')
    throw new Error(
      `${path}: field "architectures" says a reward/value model (…ForSequenceClassification), but a causal LM ` +
        '(…LMHeadModel, …ForCausalLM) is needed here',
    );
  if (want === 'scalar' && kind === 'causal')
    throw new Error(
      `${path}: field "architectures" says a language model: not a reward model (…ForSequenceClassification with ` +
        'num_labels 1, as `instructkit rm` writes)',
    );
}

/**
 * Loads a reward model folder (checked to be one), in eval mode, with its tokenizer when it has one (a value model
 * may come without: it reads the policy's ids); `dtype` bf16 holds it frozen in bf16.
 */
export function loadRewardModel(
  dir: string,
  opts: FolderOptions = {},
): { model: ScalarModel; tokenizer: Tokenizer | null } {
  checkModelFolder(dir, 'scalar', opts.base);
  const tokDir = tokenizerFolder(dir, opts.base);
  const tokenizer = existsSync(join(tokDir, 'tokenizer.json')) ? Tokenizer.fromDir(tokDir) : null;
  return { model: loadScalarFolder(dir, opts), tokenizer };
}
