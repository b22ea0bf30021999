// LoRA (Hu et al. 2021) in PEFT's manner: a low-rank update scale·B·A added to named Linear / Conv1D projections,
// the base weights frozen. Adapters are saved and loaded in PEFT's layout (adapter_config.json +
// adapter_model.safetensors, `base_model.model.<module path>.lora_A.weight`), and merge into the base.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Conv1D, Dropout, Linear, type Module, type OutputAdapter } from '../nn/index.js';
import { add, keep, linear, matmul, noGrad, Rng, rand, scale, type Tensor, toF32 } from '../tensor/index.js';
import { GPT2 } from './gpt2.js';
import { ScalarModel } from './heads.js';
import { type CausalLM, hfParamName, savePretrained, saveScalarPretrained } from './hf.js';
import { readHeader, readSafetensors, writeSafetensors } from './safetensors.js';

export interface LoraConfig {
  /** Rank of the update (> 0). */
  r: number;
  /** The update is scaled by alpha / r. */
  alpha: number;
  /** Dropout on the adapter's input while training. */
  dropout: number;
  /**
   * Which projections get adapters, as PEFT's target_modules: a list of names, each matching a module whose path is
   * that name or ends in `.name` (`c_attn`, `q_proj`, `self_attn.q_proj`); or one regular expression that must match
   * a whole module path (`.*\.(q|v)_proj`). Null: the model family's usual choice (GPT-2 c_attn; Llama q_proj, v_proj).
   */
  targets: string[] | string | null;
}

/** The LoRA fields of every trainer's config (flat, one CLI flag each); loraR 0 trains the whole model. */
export interface LoraOptions {
  loraR: number;
  loraAlpha: number;
  loraDropout: number;
  /** `--lora-targets` text (see parseLoraTargets); '' = the model family's usual targets. */
  loraTargets: string;
  /** Also write the merged full model (dir/merged) at the end. */
  merge: boolean;
}

/** PEFT's usual alpha of 2·r for r 8 (TRL's examples), dropout 0.05; LoRA off until loraR is set. */
export const loraDefaults: LoraOptions = {
  loraR: 0,
  loraAlpha: 16,
  loraDropout: 0.05,
  loraTargets: '',
  merge: false,
};

/** The LoRA config a trainer's options ask for (null: full fine-tuning); throws naming the field when out of range. */
export function loraConfigOf(o: LoraOptions, source = 'config'): LoraConfig | null {
  if (!Number.isInteger(o.loraR) || o.loraR < 0)
    throw new Error(`${source}: field "loraR" must be an integer > 0 (or 0 for no LoRA), got ${o.loraR}`);
  if (o.loraR === 0) {
    if (o.merge) throw new Error(`${source}: field "merge" (--merge) needs LoRA (--lora-r)`);
    return null;
  }
  const config = {
    r: o.loraR,
    alpha: o.loraAlpha,
    dropout: o.loraDropout,
    targets: o.loraTargets === '' ? null : parseLoraTargets(o.loraTargets),
  };
  checkLoraConfig(config, source);
  return config;
}

/** What a saved adapter adds besides the config: the base it belongs to, and for scalar models the trained head. */
interface LoraState {
  config: LoraConfig;
  /** Module paths that carry adapters. */
  paths: string[];
  /** Modules trained whole beside the adapters (PEFT's modules_to_save): a scalar model's `score`. */
  modulesToSave: string[];
  trunk: CausalLM;
}

const states = new WeakMap<Module, LoraState>();

type Projection = Linear | Conv1D;

/** The low-rank update of one projection; lora_A [r, in] and lora_B [out, r] as PEFT's nn.Linear weights. */
class LoraAdapter implements OutputAdapter {
  enabled = true;
  constructor(
    readonly A: Linear,
    readonly B: Linear,
    readonly drop: Dropout,
    readonly scaling: number,
  ) {}
  forward(x: Tensor, y: Tensor): Tensor {
    if (!this.enabled) return y;
    // The scale goes on the rank-r activations, not on the (rows × out) update: one wide intermediate fewer.
    const h = scale(linear(this.drop.forward(x), this.A.weight, null, { transB: true }), this.scaling);
    return add(y, linear(h, this.B.weight, null, { transB: true }));
  }
}

const FAMILY_TARGETS = { gpt2: ['c_attn'], llama: ['q_proj', 'v_proj'] };

function trunkOf(model: Module): CausalLM {
  if (model instanceof ScalarModel) return model.trunk;
  if ('config' in model && 'hidden' in model) return model as unknown as CausalLM;
  throw new Error('lora: expected a causal LM (GPT-2, Llama family) or a scalar model on one');
}

function targetsOf(cfg: LoraConfig, trunk: CausalLM): string[] | string {
  return cfg.targets ?? FAMILY_TARGETS[trunk instanceof GPT2 ? 'gpt2' : 'llama'];
}

/** PEFT's rule: a list entry matches the path itself or a `.`-separated suffix; a string is a whole-path regex. */
export function matchesTarget(path: string, targets: string[] | string): boolean {
  if (typeof targets === 'string') return new RegExp(`^(?:${targets})$`).test(path);
  return targets.some((t) => path === t || path.endsWith(`.${t}`));
}

/**
 * `--lora-targets` text: names separated by `,` or `|` (`q_proj,v_proj`, `q_proj|v_proj`) become a list; anything
 * with other regular-expression syntax is one regex over whole module paths (`.*\.(q|v)_proj`).
 */
export function parseLoraTargets(text: string): string[] | string {
  const parts = text
    .split(/[,|]/)
    .map((s) => s.trim())
    .filter(Boolean);
  return parts.every((p) => /^[\w.]+$/.test(p)) ? parts : text;
}

/** Throws naming the field when a LoRA config is out of range; `source` names where it came from. */
export function checkLoraConfig(c: LoraConfig, source = 'lora config'): void {
  if (!Number.isInteger(c.r) || c.r <= 0) throw new Error(`${source}: LoRA rank r must be an integer > 0, got ${c.r}`);
  if (!(c.alpha > 0) || !Number.isFinite(c.alpha))
    throw new Error(`${source}: LoRA alpha must be a finite number > 0, got ${c.alpha}`);
  if (!(c.dropout >= 0 && c.dropout < 1))
    throw new Error(`${source}: LoRA dropout must be in [0, 1), got ${c.dropout}`);
  if (c.targets !== null && (Array.isArray(c.targets) ? c.targets.length === 0 : c.targets === ''))
    throw new Error(`${source}: LoRA targets must name at least one module`);
  if (typeof c.targets === 'string')
    try {
      new RegExp(c.targets);
    } catch (e) {
      throw new Error(
        `${source}: LoRA targets ${JSON.stringify(c.targets)} is not a valid regex (${(e as Error).message})`,
      );
    }
}

/** Every projection a pattern could target, by path. */
function projections(model: Module): [string, Projection][] {
  return model
    .namedModules()
    .filter((e): e is [string, Projection] => e[1] instanceof Linear || e[1] instanceof Conv1D)
    .filter(([path]) => !/\.lora_[AB]$/.test(path));
}

/** The adapted projections of a model, by path (empty without LoRA). */
function adapted(model: Module): [string, Projection & { adapter: LoraAdapter }][] {
  return projections(model).filter((e): e is [string, Projection & { adapter: LoraAdapter }] => {
    return e[1].adapter instanceof LoraAdapter;
  });
}

export function hasLora(model: Module): boolean {
  return states.has(model);
}

/**
 * Attaches adapters (A uniform in ±1/√in as PEFT's kaiming init, B zero, so the model starts unchanged) to every
 * projection that `config.targets` matches, and freezes everything else except `modulesToSave` (a scalar model's
 * `score` by default): afterwards only adapters (and those) have requiresGrad, so only they get gradients and
 * optimizer state. Everything is checked before the model is touched.
 */
export function applyLora(
  model: Module,
  config: LoraConfig,
  opts: { seed?: number; modulesToSave?: string[]; frozenDtype?: 'f32' | 'bf16' } = {},
): void {
  checkLoraConfig(config);
  if (states.has(model)) throw new Error('lora: the model already has adapters');
  const trunk = trunkOf(model);
  const targets = targetsOf(config, trunk);
  const all = projections(model);
  const chosen = all.filter(([path]) => matchesTarget(path, targets));
  if (chosen.length === 0) {
    const leafNames = [...new Set(all.map(([p]) => p.slice(p.lastIndexOf('.') + 1)))];
    throw new Error(
      `lora: target ${JSON.stringify(targets)} matches no Linear/Conv1D module; the model has ${leafNames.join(', ')} ` +
        `(e.g. ${all[0]?.[0] ?? 'none'})`,
    );
  }
  const modulesToSave =
    opts.modulesToSave ?? (model instanceof ScalarModel ? ['score', ...(model.likelihood ? ['likelihood'] : [])] : []);
  const saved = new Set(modulesToSave);
  for (const name of saved)
    if (!model.namedModules().some(([p]) => p === name)) throw new Error(`lora: modulesToSave: no module "${name}"`);
  const rng = new Rng(opts.seed ?? 0);
  for (const [, p] of model.namedParameters()) p.requiresGrad = false;
  for (const [path, m] of model.namedModules())
    if (saved.has(path)) for (const p of m.parameters()) p.requiresGrad = true;
  for (const [, proj] of chosen) {
    const [inF, outF] = proj instanceof Conv1D ? proj.weight.shape : [proj.weight.shape[1], proj.weight.shape[0]];
    const A = new Linear(inF, config.r, rng, { bias: false, std: 0 });
    const bound = 1 / Math.sqrt(inF);
    noGrad(() => A.weight.f32.set(rand(A.weight.shape, rng, -bound, bound).f32));
    const B = new Linear(config.r, outF, rng, { bias: false, std: 0 });
    const drop = new Dropout(config.dropout, rng);
    proj.registerModule('lora_A', A);
    proj.registerModule('lora_B', B);
    proj.registerModule('lora_dropout', drop);
    for (const m of [A, B, drop]) m.training = proj.training; // the mode the model is in (train() / eval())
    proj.adapter = new LoraAdapter(A, B, drop, config.alpha / config.r);
  }
  states.set(model, { config, paths: chosen.map(([p]) => p), modulesToSave, trunk });
  // --bf16: the frozen base in bf16, as frozen reference and reward models are. Its matrices had no f32 master to
  // keep, and autocast made a bf16 copy of each at every step; gradients still flow through them to the adapters.
  if (opts.frozenDtype === 'bf16') model.toDtype('bf16', { frozenOnly: true });
}

/**
 * Runs fn with every adapter of the model switched off: the frozen base alone. PPO's reference model is the policy
 * this way, so one copy of the base serves both.
 */
export function withAdaptersDisabled<T>(model: Module, fn: () => T): T {
  const list = adapted(model).map(([, m]) => m.adapter);
  const before = list.map((a) => a.enabled);
  for (const a of list) a.enabled = false;
  try {
    return fn();
  } finally {
    list.forEach((a, i) => {
      a.enabled = before[i];
    });
  }
}

/** A saved adapter: PEFT's names for our parameters (prefix `base_model.model.`, GPT-2's trunk under `transformer.`). */
function peftName(trunk: CausalLM, path: string): string {
  return `base_model.model.${hfParamName(trunk, path)}`;
}

// The saved tensors by PEFT name: the model's trainable parameters (adapters and modules_to_save), or `values` for
// them (e.g. their moving average) by our names.
function adapterTensors(model: Module, st: LoraState, values?: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of model.namedTrainableParameters()) {
    const v = values?.get(name) ?? t;
    if (v.numel !== t.numel) throw new Error(`saveAdapter: "${name}" has ${v.numel} values, the model ${t.numel}`);
    out.set(peftName(st.trunk, name), v);
  }
  return out;
}

function writeAtomically(path: string, write: (tmp: string) => void): void {
  const tmp = `${path}.tmp-${process.pid}`;
  write(tmp);
  renameSync(tmp, path);
}

/**
 * Writes adapter_config.json and adapter_model.safetensors (PEFT's layout and names) into dir. `baseModel` is the
 * folder (or hub name) of the base, recorded as base_model_name_or_path.
 */
export function saveAdapter(model: Module, dir: string, baseModel: string | null, values?: Map<string, Tensor>): void {
  const st = states.get(model);
  if (!st) throw new Error('saveAdapter: the model has no LoRA adapters');
  const c = st.config;
  const config = {
    peft_type: 'LORA',
    task_type: model instanceof ScalarModel ? 'SEQ_CLS' : 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: c.r,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    target_modules: targetsOf(c, st.trunk),
    fan_in_fan_out: st.trunk instanceof GPT2,
    bias: 'none',
    modules_to_save: st.modulesToSave.length > 0 ? st.modulesToSave : null,
    inference_mode: true,
    init_lora_weights: true,
    use_rslora: false,
    use_dora: false,
    revision: null,
  };
  mkdirSync(dir, { recursive: true });
  writeAtomically(join(dir, 'adapter_model.safetensors'), (tmp) =>
    writeSafetensors(tmp, adapterTensors(model, st, values), { format: 'pt' }),
  );
  writeAtomically(join(dir, 'adapter_config.json'), (tmp) =>
    writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`),
  );
}

/** True when dir holds a PEFT adapter (adapter_config.json). */
export function isAdapterFolder(dir: string): boolean {
  return existsSync(join(dir, 'adapter_config.json'));
}

/** Reads and checks an adapter_config.json into a LoraConfig (+ what else it records). */
export function readAdapterConfig(dir: string): {
  config: LoraConfig;
  baseModel: string | null;
  fanInFanOut: boolean;
  modulesToSave: string[];
} {
  const path = join(dir, 'adapter_config.json');
  if (!existsSync(path)) throw new Error(`${path}: file not found (not a PEFT adapter folder)`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (json.peft_type !== 'LORA')
    throw new Error(`${path}: field "peft_type" must be "LORA", got ${JSON.stringify(json.peft_type)}`);
  for (const flag of ['use_dora', 'use_rslora'] as const)
    if (json[flag] === true) throw new Error(`${path}: field "${flag}" true is not supported`);
  if (json.bias !== undefined && json.bias !== 'none')
    throw new Error(`${path}: field "bias" ${JSON.stringify(json.bias)} is not supported (only "none")`);
  const targets = json.target_modules;
  if (!(typeof targets === 'string' || (Array.isArray(targets) && targets.every((t) => typeof t === 'string'))))
    throw new Error(`${path}: field "target_modules" must be a list of names or a regex string`);
  const config: LoraConfig = {
    r: json.r as number,
    alpha: (json.lora_alpha ?? 8) as number,
    dropout: (json.lora_dropout ?? 0) as number,
    targets: targets as string[] | string,
  };
  checkLoraConfig(config, path);
  const mts = json.modules_to_save;
  return {
    config,
    baseModel: typeof json.base_model_name_or_path === 'string' ? json.base_model_name_or_path : null,
    fanInFanOut: json.fan_in_fan_out === true,
    modulesToSave: Array.isArray(mts) ? (mts as string[]) : [],
  };
}

/**
 * Attaches the PEFT adapter in dir to a model without adapters (its base): every tensor name and shape is checked
 * against the model first, and a mismatch names the tensor; nothing is changed unless all fit.
 */
export function loadAdapter(model: Module, dir: string): void {
  if (states.has(model)) throw new Error(`${dir}: the model already has adapters`);
  const { config, modulesToSave } = readAdapterConfig(dir);
  const file = join(dir, 'adapter_model.safetensors');
  if (!existsSync(file)) throw new Error(`${file}: file not found`);
  const { entries } = readHeader(file);
  // Every name and shape the adapter must have, worked out before anything is attached.
  const trunk = trunkOf(model);
  const targets = targetsOf(config, trunk);
  const byPeft = new Map<string, { path: string; shape: readonly number[] }>();
  for (const [path, proj] of projections(model)) {
    if (!matchesTarget(path, targets)) continue;
    const [inF, outF] = proj instanceof Conv1D ? proj.weight.shape : [proj.weight.shape[1], proj.weight.shape[0]];
    byPeft.set(peftName(trunk, `${path}.lora_A.weight`), { path: `${path}.lora_A.weight`, shape: [config.r, inF] });
    byPeft.set(peftName(trunk, `${path}.lora_B.weight`), { path: `${path}.lora_B.weight`, shape: [outF, config.r] });
  }
  for (const [name, t] of model.namedParameters())
    if (modulesToSave.some((s) => name.startsWith(`${s}.`)))
      byPeft.set(peftName(trunk, name), { path: name, shape: t.shape });
  // PEFT files may name a GPT-2 trunk without `transformer.` (a GPT2Model base): accept both.
  const alias = (name: string) =>
    byPeft.has(name) || !(trunk instanceof GPT2)
      ? name
      : name.replace(/^base_model\.model\./, 'base_model.model.transformer.');
  const problems: string[] = [];
  const found = new Set<string>();
  for (const [name, e] of entries) {
    const want = byPeft.get(alias(name));
    if (!want)
      problems.push(
        `tensor "${name}" matches no ${name.includes('lora_') ? 'targeted module' : 'parameter'} of the model`,
      );
    else if (want.shape.join() !== e.shape.join())
      problems.push(`tensor "${name}" has shape [${e.shape}], the model needs [${want.shape}]`);
    else found.add(alias(name));
  }
  for (const [name, { path }] of byPeft)
    if (!found.has(name) && !path.startsWith('score.bias')) problems.push(`tensor "${name}" is missing`);
  if (problems.length > 0)
    throw new Error(`${dir}: the adapter does not fit this model, nothing was loaded:\n  ${problems.join('\n  ')}`);
  applyLora(model, { ...config, targets }, { modulesToSave });
  const own = new Map(model.namedParameters());
  const loaded = readSafetensors(file);
  try {
    for (const [name, t] of loaded) own.get(byPeft.get(alias(name))!.path)!.f32.set(t.f32);
  } finally {
    for (const t of loaded.values()) t.dispose();
  }
}

/** The adapter's full-rank update for one projection, in the base weight's layout: scale·B·A ([out, in], or [in, out] for Conv1D). */
function delta(proj: Projection & { adapter: LoraAdapter }): Tensor {
  const { A, B, scaling } = proj.adapter;
  const ba =
    proj instanceof Conv1D ? matmul(A.weight, B.weight, { transA: true, transB: true }) : matmul(B.weight, A.weight);
  return scale(ba, scaling);
}

/**
 * The model's weights with every adapter folded in (W + scale·B·A), by the plain model's names: merged copies for the
 * adapted weights, the live tensors for the rest; `release` frees the copies. The model is unchanged.
 */
export function mergedWeights(model: Module): { weights: Map<string, Tensor>; release(): void } {
  const merged = new Map<string, Tensor>();
  noGrad(() => {
    for (const [path, proj] of adapted(model)) merged.set(`${path}.weight`, keep(add(toF32(proj.weight), delta(proj))));
  });
  const weights = new Map<string, Tensor>();
  for (const [name, t] of model.namedParameters())
    if (!/\.lora_[AB]\./.test(name)) weights.set(name, merged.get(name) ?? t);
  const release = () => {
    for (const t of merged.values()) t.dispose();
  };
  return { weights, release };
}

/** Where a trained model goes and how. */
export interface SaveTrainedOptions {
  /** The folder training started from, recorded in adapter_config.json as base_model_name_or_path. */
  baseModel: string;
  /** With LoRA, also write the merged full model into `dir/merged`. */
  merge?: boolean;
  /** Values to save for the trainable parameters instead of their own (e.g. PPO's moving average). */
  values?: Map<string, Tensor>;
  /** dtype of a full model's weights on disk (adapters stay f32). */
  dtype?: 'f32' | 'bf16';
}

/**
 * Writes what training produced: without LoRA the whole model as a Hugging Face folder (savePretrained, or
 * saveScalarPretrained for a reward/value model); with LoRA only the adapter in PEFT's layout, plus with merge the
 * full model (adapters folded in) in dir/merged. Returns the folder that holds a full model, or null.
 */
export function saveTrained(model: CausalLM | ScalarModel, dir: string, opts: SaveTrainedOptions): string | null {
  const write = (target: string, weights?: Map<string, Tensor>) =>
    model instanceof ScalarModel
      ? saveScalarPretrained(model, target, { weights, dtype: opts.dtype })
      : savePretrained(model as CausalLM, target, { weights, dtype: opts.dtype });
  if (!states.has(model)) {
    if (opts.values) {
      const own = new Map(model.namedParameters());
      write(dir, new Map([...own].map(([n, t]) => [n, opts.values!.get(n) ?? t])));
    } else write(dir);
    return dir;
  }
  saveAdapter(model, dir, opts.baseModel, opts.values);
  if (!opts.merge) return null;
  const restore = opts.values ? swapTrainable(model, opts.values) : null;
  const merged = mergedWeights(model);
  try {
    write(join(dir, 'merged'), merged.weights);
  } finally {
    merged.release();
    restore?.();
  }
  return join(dir, 'merged');
}

// Puts `values` into the trainable parameters and returns the function that puts the originals back.
function swapTrainable(model: Module, values: Map<string, Tensor>): () => void {
  const saved: [Tensor, Float32Array][] = [];
  for (const [name, t] of model.namedTrainableParameters()) {
    const v = values.get(name);
    if (!v) continue;
    saved.push([t, Float32Array.from(t.f32)]);
    t.f32.set(v.f32);
  }
  return () => {
    for (const [t, original] of saved) t.f32.set(original);
  };
}

/**
 * Folds every adapter into its base weight (W += scale·B·A) and removes the adapters: the model is plain again
 * (all parameters trainable), ready for savePretrained.
 */
export function mergeAndUnload(model: Module): void {
  const st = states.get(model);
  if (!st) throw new Error('mergeAndUnload: the model has no LoRA adapters');
  noGrad(() => {
    for (const [, proj] of adapted(model)) {
      const d = delta(proj);
      const w = proj.weight.f32;
      const dv = d.f32;
      for (let i = 0; i < w.length; i++) w[i] += dv[i];
      d.dispose();
      for (const name of ['lora_A', 'lora_B', 'lora_dropout']) {
        const child = proj.removeModule(name);
        for (const p of child.parameters()) p.dispose();
      }
      (proj as Projection).adapter = null;
    }
  });
  for (const p of model.parameters()) p.requiresGrad = true;
  states.delete(model);
}
