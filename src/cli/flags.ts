// Flags every training command takes besides its config's fields (which come from the config's schema).
import type { ComparisonFormat } from '../rlhf/data.js';

/** Run flags, for parseArgs. */
export const RUN_FLAGS = {
  config: { type: 'string' },
  resume: { type: 'boolean' },
  'force-config': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const RUN_HELP = `  --config FILE            JSON or YAML with any of the fields above; flags override it
  --resume                 continue from the newest checkpoint in --out (with the same config)
  --force-config           resume even though the config differs from the saved one
  -h, --help               this text`;

/** --base: the base model of an adapter folder given as the model (sft, rm, dpo, grpo, ppo, sample, export). */
export const BASE_HELP = `  --base DIR               when the model is a PEFT adapter folder: its base model folder (default: the local folder
                           adapter_config.json's base_model_name_or_path names)`;

/** Input flags of the trainers that read a model folder and a data file (sft, rm). */
export const DATA_FLAGS = {
  model: { type: 'string' },
  base: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  val: { type: 'string' },
  'skip-bad': { type: 'boolean' },
} as const;

export const DATA_HELP = `  --model DIR              the model folder training starts from (config.json, model.safetensors, tokenizer.json),
                           or a LoRA run's adapter folder (its base with the adapter merged in)
${BASE_HELP}
  --data FILE              training data (JSONL)
  --out DIR                output folder (model, metrics.jsonl, <stage>_config.json, checkpoints/)
  --val FILE               held-out data (else --val-fraction of --data is held out)
  --skip-bad               skip malformed or too long lines (and say how many) instead of failing`;

/** --format of the commands that read comparisons (rm, dpo). */
export const FORMAT_HELP = '  --format F               auto (per line), rankings or pairwise (default auto)';

const COMPARISON_FORMATS: readonly string[] = ['auto', 'rankings', 'pairwise'] satisfies ComparisonFormat[];

/** The --format flag's value (default auto); anything else is an error naming the choices. */
export function comparisonFormat(command: string, value: string | undefined): ComparisonFormat {
  const format = value ?? 'auto';
  if (!COMPARISON_FORMATS.includes(format))
    throw new Error(`${command}: --format must be auto, rankings or pairwise, got "${format}"`);
  return format as ComparisonFormat;
}

/** The flag's number (undefined when absent); `valid` narrows what is accepted, `want` says so in the error. */
export function numberFlag(
  value: string | undefined,
  flag: string,
  valid: (v: number) => boolean = () => true,
  want = 'a number',
): number | undefined {
  if (value === undefined) return undefined;
  const n = value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(n) || !valid(n)) throw new Error(`${flag}: expected ${want}, got ${JSON.stringify(value)}`);
  return n;
}
