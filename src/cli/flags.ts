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
  ...loraFlags(),
} as const;

/** The LoRA flags of every trainer command, for parseArgs. */
export function loraFlags() {
  return {
    'lora-r': { type: 'string' },
    'lora-alpha': { type: 'string' },
    'lora-dropout': { type: 'string' },
    'lora-targets': { type: 'string' },
    merge: { type: 'boolean' },
  } as const;
}

/** `--help` lines of the LoRA flags. */
export const LORA_HELP = `  --lora-r R             train LoRA adapters of rank R instead of the whole model (base frozen; saves the
                         adapter in PEFT's layout: adapter_config.json + adapter_model.safetensors)
  --lora-alpha A         LoRA scale alpha / r (default 16)
  --lora-dropout P       dropout on the adapters' input (default 0.05)
  --lora-targets LIST    modules to adapt: names matched as a dotted suffix, separated by , or | (c_attn;
                         q_proj,v_proj), or one regex over whole module paths (.*\\.(q|v)_proj); default GPT-2
                         c_attn, Llama family q_proj,v_proj
  --merge                with LoRA, also write the full model with the adapters merged into OUT/merged
`;

/** The LoRA fields given on the command line (undefined where absent), checked. */
export function loraFlagValues(values: {
  'lora-r'?: string;
  'lora-alpha'?: string;
  'lora-dropout'?: string;
  'lora-targets'?: string;
  merge?: boolean;
}): Record<string, number | string | boolean | undefined> {
  return {
    loraR: numberFlag(values['lora-r'], '--lora-r', (v) => Number.isInteger(v) && v > 0, 'an integer > 0'),
    loraAlpha: numberFlag(values['lora-alpha'], '--lora-alpha', (v) => v > 0, 'a number > 0'),
    loraDropout: numberFlag(values['lora-dropout'], '--lora-dropout', (v) => v >= 0 && v < 1, 'a number in [0, 1)'),
    loraTargets: values['lora-targets'],
    loraMerge: values.merge,
  };
}

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
  extra: Record<string, number | string | boolean | undefined> = {},
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
      ...loraFlagValues(values),
      ...extra,
    },
    'command line',
  );
}
