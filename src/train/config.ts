// Typed run configs. One TypeBox schema per trainer, extending the base every trainer shares (same names in every
// stage: batchSize, lr, maxGradNorm, saveEvery, seed, bf16, ...), gives the defaults, the checks (errors name the
// field, its flag and what it must be), the command-line flags and --help. A run's config is defaults ← a JSON or
// YAML file (--config) ← flags, printed at the start and saved beside its checkpoints.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Static, type TObject, type TProperties, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { PROMPT_FORMATS } from '../tokenizer/index.js';

/** Reads a JSON or YAML config file (by extension; .yml/.yaml are YAML) into a plain object. */
export function readConfigFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new Error(`${path}: config file not found`);
  const text = readFileSync(path, 'utf8');
  let value: unknown;
  try {
    value = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: cannot parse (${(e as Error).message})`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${path}: must hold an object`);
  return value as Record<string, unknown>;
}

const SCHEDULERS = ['cosine', 'constant'] as const;

/** The fields every trainer shares, with a trainer's own defaults. */
export function baseFields(d: Partial<BaseConfig> = {}) {
  return {
    batchSize: Type.Integer({
      minimum: 1,
      maximum: 1 << 16,
      default: d.batchSize ?? 8,
      description: 'examples per optimizer step',
    }),
    lr: Type.Number({ minimum: 0, maximum: 10, default: d.lr ?? 1e-5, description: 'peak learning rate' }),
    lrScheduler: Type.Union(
      SCHEDULERS.map((s) => Type.Literal(s)),
      { default: d.lrScheduler ?? 'cosine', description: 'warmup then cosine decay to minLrRatio × lr, or constant' },
    ),
    warmupRatio: Type.Number({
      minimum: 0,
      maximum: 1,
      default: d.warmupRatio ?? 0.03,
      description: 'share of the updates spent warming the lr up from 0',
    }),
    minLrRatio: Type.Number({
      minimum: 0,
      maximum: 1,
      default: d.minLrRatio ?? 0.1,
      description: 'floor of the cosine decay, as a share of lr',
    }),
    weightDecay: Type.Number({
      minimum: 0,
      maximum: 10,
      default: d.weightDecay ?? 0,
      description: 'AdamW weight decay (matrices only)',
    }),
    adamBeta1: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: d.adamBeta1 ?? 0.9, description: 'AdamW β1' }),
    adamBeta2: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: d.adamBeta2 ?? 0.999, description: 'AdamW β2' }),
    maxGradNorm: Type.Number({
      minimum: 0,
      default: d.maxGradNorm ?? 1,
      description: 'clip the gradient norm to this (0: no clipping)',
    }),
    saveEvery: Type.Integer({
      minimum: 0,
      default: d.saveEvery ?? 0,
      description: 'also checkpoint every this many steps (0: only where the trainer does)',
    }),
    seed: Type.Integer({ minimum: 0, maximum: 0xffffffff, default: d.seed ?? 0, description: 'random seed' }),
    bf16: Type.Boolean({
      default: d.bf16 ?? false,
      description: 'bf16 autocast (master weights f32); frozen reference and reward models held in bf16',
    }),
    saveDtype: Type.Union([Type.Literal('f32'), Type.Literal('bf16')], {
      default: 'f32',
      description: "dtype of the saved model's weights (checkpoints stay f32, for exact resume)",
    }),
  };
}

export interface BaseConfig {
  batchSize: number;
  lr: number;
  lrScheduler: (typeof SCHEDULERS)[number];
  warmupRatio: number;
  minLrRatio: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  maxGradNorm: number;
  saveEvery: number;
  seed: number;
  bf16: boolean;
  saveDtype: 'f32' | 'bf16';
}

/** How prompts are rendered (see tokenizer/format.ts), for the configs of stages that read prompts. */
export const promptFormatField = Type.Union(
  PROMPT_FORMATS.map((f) => Type.Literal(f)),
  {
    default: 'auto',
    description: "prompt format: the model folder's (auto), its chat template (chat) or the text as is (raw)",
  },
);

/** GPT-2's residual dropout while fine-tuning (null keeps the model folder's), for sft, rm and dpo. */
export function dropoutField(def: number) {
  return Type.Union([Type.Number({ minimum: 0, exclusiveMaximum: 1 }), Type.Null()], {
    default: def,
    description: "GPT-2 residual dropout (null: the model folder's)",
  });
}

/** The share of the data held out for evaluation when no --val file is given; `what` names the data. */
export function valFractionField(what: string) {
  return Type.Number({
    minimum: 0,
    exclusiveMaximum: 1,
    default: 0.1,
    description: `share of the ${what} held out when there is no --val`,
  });
}

/** The LoRA fields of every trainer that fine-tunes a model (flags --lora-r, --lora-alpha, ..., --merge). */
/**
 * The pretraining mix (InstructGPT's PPO-ptx, and SFT's): γ_ptx × the LM loss on windows of a pretraining corpus
 * added to each update, against forgetting. `coef` is the default γ_ptx (used only with a corpus).
 */
export function ptxFields(coef: number) {
  return {
    ptxCoef: Type.Number({
      minimum: 0,
      default: coef,
      description: 'γ_ptx: weight of the pretraining LM loss (with --ptx)',
    }),
    ptxBatchSize: Type.Integer({ minimum: 1, default: 4, description: 'pretraining windows per update' }),
    ptxSeqLen: Type.Integer({ minimum: 1, default: 128, description: 'tokens per pretraining window' }),
  };
}

export function loraFields() {
  return {
    loraR: Type.Integer({
      minimum: 0,
      default: 0,
      description: 'train LoRA adapters of this rank instead of the whole model (0: the whole model)',
    }),
    loraAlpha: Type.Number({ exclusiveMinimum: 0, default: 16, description: 'LoRA scale alpha / r' }),
    loraDropout: Type.Number({
      minimum: 0,
      exclusiveMaximum: 1,
      default: 0.05,
      description: "dropout on the adapters' input",
    }),
    loraTargets: Type.String({
      default: '',
      description:
        'modules to adapt: names matched as a dotted suffix, separated by , or | (q_proj,v_proj), or one regex over ' +
        'whole module paths; default GPT-2 c_attn, Llama family q_proj,v_proj',
    }),
    merge: Type.Boolean({
      default: false,
      description: 'with LoRA, also write the full model with the adapters merged into OUT/merged',
    }),
  };
}

/** `--kebab-case` of a field name. */
export function flagOf(field: string): string {
  return `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

// What a field must be, in words, from its schema.
function describe(s: TSchema): string {
  if (typeof s.want === 'string') return s.want;
  if (s.anyOf) {
    const parts = (s.anyOf as TSchema[]).map(describe);
    if ((s.anyOf as TSchema[]).every((x) => 'const' in x)) return `one of ${parts.join(', ')}`;
    return parts.join(' or ');
  }
  if ('const' in s) return String(s.const);
  if (s.type === 'null') return 'null';
  if (s.type === 'boolean') return 'true or false';
  if (s.type === 'string') return s.minLength ? 'a non-empty string' : 'a string';
  if (s.type === 'array') return s.minItems ? 'a non-empty list of files' : `a list of ${describe(s.items)}s`;
  const what = s.type === 'integer' ? 'an integer' : 'a number';
  const lo = s.minimum ?? s.exclusiveMinimum;
  const hi = s.maximum ?? s.exclusiveMaximum;
  if (lo !== undefined && hi !== undefined)
    return `${what} in ${s.exclusiveMinimum !== undefined ? '(' : '['}${lo}, ${hi}${s.exclusiveMaximum !== undefined ? ')' : ']'}`;
  if (lo !== undefined) return `${what} ${s.exclusiveMinimum !== undefined ? '>' : '>='} ${lo}`;
  if (hi !== undefined) return `${what} ${s.exclusiveMaximum !== undefined ? '<' : '<='} ${hi}`;
  return what;
}

type Layer = { values: Record<string, unknown>; source: string };
type ParseOption = { type: 'string' | 'boolean'; multiple?: boolean };

/** A trainer's config: schema, defaults, checks, flags and help, all from one set of TypeBox fields. */
export class ConfigSpec<P extends TProperties> {
  readonly schema: TObject<P>;
  readonly defaults: Static<TObject<P>>;

  constructor(
    readonly stage: string,
    readonly fields: P,
  ) {
    this.schema = Type.Object(fields, { additionalProperties: false });
    this.defaults = Object.fromEntries(
      Object.entries(fields).map(([k, s]) => [k, structuredClone(s.default)]),
    ) as Static<TObject<P>>;
  }

  /** Throws an error naming the first bad field (and its flag). */
  check(c: unknown, source = `${this.stage} config`): Static<TObject<P>> {
    const o = c as Record<string, unknown>;
    for (const [k, s] of Object.entries(this.fields))
      if (!Value.Check(s, o[k]))
        throw new Error(
          `${source}: field "${k}" (${flagOf(k)}) must be ${describe(s)}, got ${JSON.stringify(o[k]) ?? 'nothing'}`,
        );
    for (const k of Object.keys(o))
      if (!(k in this.fields)) throw new Error(`${source}: unknown field "${k}" (known: ${this.known()})`);
    return o as Static<TObject<P>>;
  }

  private known(): string {
    return Object.keys(this.fields).sort().join(', ');
  }

  /** Defaults, then each layer in order (a config file, the command line); unknown fields are errors. */
  resolve(layers: Layer[], base: Partial<Static<TObject<P>>> = {}): Static<TObject<P>> {
    const out: Record<string, unknown> = { ...this.defaults, ...base };
    for (const { values, source } of layers)
      for (const [k, v] of Object.entries(values)) {
        if (v === undefined) continue;
        if (!(k in this.fields)) throw new Error(`${source}: unknown field "${k}" (known: ${this.known()})`);
        if (!Value.Check(this.fields[k], v))
          throw new Error(
            `${source}: field "${k}" (${flagOf(k)}) must be ${describe(this.fields[k])}, got ${JSON.stringify(v)}`,
          );
        out[k] = v;
      }
    return this.check(out);
  }

  /** parseArgs options: one flag per field (`--no-x` for booleans that default to true). */
  options(): Record<string, ParseOption> {
    const out: Record<string, ParseOption> = {};
    for (const [k, s] of Object.entries(this.fields)) {
      const flag = flagOf(k).slice(2);
      if (s.type === 'boolean') {
        out[flag] = { type: 'boolean' };
        if (s.default === true) out[`no-${flag}`] = { type: 'boolean' };
      } else out[flag] = s.type === 'array' ? { type: 'string', multiple: true } : { type: 'string' };
    }
    return out;
  }

  /** The fields given as flags, converted to their types (a malformed number names its flag). */
  fromFlags(values: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, s] of Object.entries(this.fields)) {
      const flag = flagOf(k).slice(2);
      const v = values[flag];
      if (s.type === 'boolean') {
        if (values[`no-${flag}`]) out[k] = false;
        else if (v !== undefined) out[k] = v;
        continue;
      }
      if (v === undefined) continue;
      if (Array.isArray(v) && s.items?.type === 'number')
        // `--reward-weights 0.5,1` or the flag repeated
        out[k] = v
          .flatMap((x: string) => x.split(','))
          .map((x: string, i: number) => parseFlagValue(x, s.items, `--${flag} (item ${i + 1})`));
      else out[k] = typeof v === 'string' ? parseFlagValue(v, s, `--${flag}`) : v;
    }
    return out;
  }

  /** defaults ← --config file ← flags. */
  fromArgs(values: Record<string, unknown>, base: Partial<Static<TObject<P>>> = {}): Static<TObject<P>> {
    const layers: Layer[] = [];
    if (typeof values.config === 'string')
      layers.push({ values: readConfigFile(values.config), source: values.config });
    layers.push({ values: this.fromFlags(values), source: 'command line' });
    return this.resolve(layers, base);
  }

  /** --help lines of the fields, from their descriptions and defaults. */
  help(skip: string[] = []): string {
    const rows: string[] = [];
    for (const [k, s] of Object.entries(this.fields)) {
      if (skip.includes(k)) continue;
      const list = s.items?.type === 'number' ? ' X,X...' : ' FILE...';
      const choices = (s.anyOf as TSchema[] | undefined)?.every((x) => 'const' in x)
        ? ` ${(s.anyOf as TSchema[]).map((x) => x.const).join('|')}`
        : null;
      const arg =
        choices ?? (s.type === 'boolean' ? '' : s.type === 'array' ? list : s.type === 'integer' ? ' N' : ' X');
      const flag = s.type === 'boolean' && s.default === true ? `--[no-]${flagOf(k).slice(2)}` : flagOf(k);
      const name = `  ${flag}${arg}`;
      const def = s.type === 'array' ? '' : ` (default ${JSON.stringify(s.default)})`;
      rows.push(`${name.padEnd(26)} ${s.description ?? ''}${def}`);
    }
    return rows.join('\n');
  }
}

function parseFlagValue(text: string, s: TSchema, flag: string): unknown {
  const nullable = s.anyOf && (s.anyOf as TSchema[]).some((x) => x.type === 'null');
  if (nullable && (text === 'null' || text === 'none')) return null;
  const numeric =
    s.type === 'number' ||
    s.type === 'integer' ||
    (s.anyOf as TSchema[] | undefined)?.some((x) => x.type === 'number' || x.type === 'integer');
  if (!numeric) return text;
  const integer = s.type === 'integer' || (s.anyOf as TSchema[] | undefined)?.some((x) => x.type === 'integer');
  const n = text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)))
    throw new Error(`${flag}: expected ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(text)}`);
  return n;
}

/**
 * Fields whose value differs between a saved config and this one (`ignore`: fields free to change). A field the
 * saved config lacks was added by a newer version, so the run used what the field's default now means: it is
 * unchanged when its value is that default (`defaults`, the trainer's; an input not in them is absent when null).
 */
export function diffConfigs(
  saved: Record<string, unknown>,
  now: Record<string, unknown>,
  ignore: string[],
  defaults: Record<string, unknown> = {},
): { field: string; saved: string; now: string }[] {
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
  const out: { field: string; saved: string; now: string }[] = [];
  for (const k of keys) {
    if (ignore.includes(k)) continue;
    const b = JSON.stringify(now[k]) ?? 'nothing';
    if (!(k in saved) && b === (JSON.stringify(k in defaults ? defaults[k] : null) ?? 'nothing')) continue;
    const a = JSON.stringify(saved[k]) ?? 'nothing';
    if (a !== b && !samePlaces(saved[k], now[k])) out.push({ field: `"${k}" (${flagOf(k)})`, saved: a, now: b });
  }
  return out;
}

// Paths (or lists of them) that name the same files from here: a run saved with absolute paths resumed with relative
// ones, as a training worker now passes them from the models folder.
function samePlaces(a: unknown, b: unknown): boolean {
  const as = typeof a === 'string' ? [a] : a;
  const bs = typeof b === 'string' ? [b] : b;
  if (!Array.isArray(as) || !Array.isArray(bs) || as.length !== bs.length || as.length === 0) return false;
  return as.every((x, i) => typeof x === 'string' && typeof bs[i] === 'string' && resolve(x) === resolve(bs[i]));
}

/** Writes the config into the run folder (created if needed) and returns its path. */
export function saveRunConfig(dir: string, name: string, config: object): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);
  return path;
}

export function printConfig(title: string, config: object, log: (line: string) => void = console.error): void {
  log(`${title}:`);
  for (const [k, v] of Object.entries(config)) log(`  ${k.padEnd(22)} ${JSON.stringify(v)}`);
}
