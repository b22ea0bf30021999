// Command-line flags shared by the trainer commands. parseArgs gives strings; a malformed number is an error
// naming the flag.
import { mergeConfig, readConfigFile } from '../train/config.js';

export function numberFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag}: expected a number, got "${value}"`);
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
