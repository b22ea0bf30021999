// Command-line flags shared by the trainer commands. parseArgs gives strings; a malformed number is an error
// naming the flag.
import { mergeConfig, readConfigFile } from '../train/config.js';

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

/** Flags every epoch-based trainer takes (sft, rm), for parseArgs. */
export const trainerFlags = {
  model: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  config: { type: 'string' },
  val: { type: 'string' },
  'val-fraction': { type: 'string' },
  epochs: { type: 'string' },
  lr: { type: 'string' },
  batch: { type: 'string' },
  dropout: { type: 'string' },
  seed: { type: 'string' },
  resume: { type: 'boolean' },
  'skip-bad': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type TrainerValues = {
  [K in keyof typeof trainerFlags]?: (typeof trainerFlags)[K]['type'] extends 'boolean' ? boolean : string;
};

/**
 * defaults ← --config file ← the shared numeric flags ← `extra` (numbers a command adds, e.g. margin), each layer
 * checked by mergeConfig.
 */
export function trainerConfig<T extends object>(
  defaults: T,
  values: TrainerValues,
  extra: Record<string, number | undefined> = {},
): T {
  const fromFile = values.config ? mergeConfig(defaults, readConfigFile(values.config), values.config) : defaults;
  return mergeConfig(
    fromFile,
    {
      epochs: numberFlag(values.epochs, '--epochs'),
      lr: numberFlag(values.lr, '--lr'),
      batchSize: numberFlag(values.batch, '--batch'),
      dropout: numberFlag(values.dropout, '--dropout'),
      seed: numberFlag(values.seed, '--seed'),
      valFraction: numberFlag(values['val-fraction'], '--val-fraction'),
      ...extra,
    },
    'command line',
  );
}
