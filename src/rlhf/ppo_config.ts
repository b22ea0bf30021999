// PPO's config: the base every trainer shares (constant lr by default, as InstructGPT), and its own fields; and
// what a PPO run is given besides it.
import { Type } from '@sinclair/typebox';
import type { CausalLM, ScalarModel } from '../models/index.js';
import { loraConfigOf } from '../models/lora.js';
import type { Formatter } from '../tokenizer/index.js';
import { baseFields, ConfigSpec, loraFields, promptFormatField, ptxFields } from '../train/config.js';
import type { PromptSet } from './data.js';
import type { RewardFn } from './reward_fn.js';

const positiveInt = (def: number, description: string) => Type.Integer({ minimum: 1, default: def, description });
const nonNegative = (def: number, description: string) => Type.Number({ minimum: 0, default: def, description });
const positive = (def: number, description: string) => Type.Number({ exclusiveMinimum: 0, default: def, description });
const unit = (def: number, description: string) => Type.Number({ minimum: 0, maximum: 1, default: def, description });

/** InstructGPT's PPO settings where the paper gives them (β 0.02, ε 0.2, EMA 0.992, γ 1, γ_ptx 27.8), TRL's else. */
export const ppoSpec = new ConfigSpec('ppo', {
  steps: positiveInt(256, 'PPO steps: each samples a batch of episodes and optimises on it'),
  miniBatchSize: positiveInt(4, 'episodes per optimizer update'),
  ppoEpochs: positiveInt(4, 'passes over each batch of episodes'),
  valueLr: nonNegative(1e-5, "the value model's learning rate"),
  maxNewTokens: positiveInt(64, 'longest sampled response'),
  temperature: positive(1, 'sampling temperature'),
  promptFormat: promptFormatField,
  klCoef: nonNegative(0.02, 'β: the initial KL coefficient'),
  klEstimator: Type.Union([Type.Literal('k1'), Type.Literal('k3')], {
    default: 'k1',
    description: 'per-token KL: k1 (log π − log π_ref) or k3',
  }),
  adaptiveKl: Type.Boolean({ default: false, description: 'adapt β towards targetKl' }),
  targetKl: positive(6, 'target KL per episode of the adaptive controller'),
  klHorizon: positive(10000, 'horizon of the adaptive controller'),
  gamma: unit(1, 'discount'),
  lam: unit(0.95, 'GAE λ'),
  clipRange: positive(0.2, 'policy ratio clip ε'),
  clipRangeValue: positive(0.2, 'value clip'),
  whitenAdvantages: Type.Boolean({ default: true, description: 'whiten advantages over the batch' }),
  emaDecay: unit(0.992, "decay of the policy weights' moving average"),
  ...ptxFields(27.8),
  sampleEvery: Type.Integer({
    minimum: 0,
    default: 20,
    description: 'print sample responses every N steps (0: never)',
  }),
  samplesShown: Type.Integer({ minimum: 0, default: 4, description: 'rows of that table' }),
  ...loraFields(),
  ...baseFields({ batchSize: 16, lr: 1e-5, lrScheduler: 'constant', warmupRatio: 0, saveEvery: 50 }),
});

export type PPOConfig = typeof ppoSpec.defaults;
export const ppoDefaults: PPOConfig = ppoSpec.defaults;

/** Throws naming the field when a merged config is out of range. */
export function checkPPOConfig(c: PPOConfig, source = 'ppo config'): void {
  ppoSpec.check(c, source);
  loraConfigOf(c, source);
  if (c.miniBatchSize > c.batchSize)
    throw new Error(`${source}: field "miniBatchSize" (${c.miniBatchSize}) exceeds batchSize (${c.batchSize})`);
}

export interface PPOSetup {
  /** Trained in place; starts as the SFT model. With config.loraR > 0 it gets LoRA adapters (base frozen). */
  policy: CausalLM;
  /**
   * The frozen SFT model (a separate copy). Leave it out with LoRA: the reference is then the policy with its
   * adapters off, so one copy of the base serves both.
   */
  ref?: CausalLM;
  /** The value model, usually initialised from the reward model; with LoRA it trains adapters and its head. */
  value: ScalarModel;
  /** Folders the policy and value model came from, recorded in saved adapters (base_model_name_or_path). */
  baseModels?: { policy: string; value: string };
  reward: RewardFn;
  /** The policy's prompt format (its tokenizer, chat template and EOS). */
  formatter: Formatter;
  prompts: PromptSet;
  /** Token ids of the pretraining corpus for PPO-ptx, documents ended by EOS (null: plain PPO). */
  ptxTokens?: number[] | null;
  config: PPOConfig;
  /** Run folder: metrics.jsonl, samples.jsonl, ppo_config.json, checkpoints/, and the final model. */
  outDir: string;
  /** Inputs saved with the config (and compared on --resume), e.g. model folders and data files. */
  inputs?: Record<string, unknown>;
  /** No config print and no sample tables (tests, the demo). */
  quiet?: boolean;
}

/** Throws when the models of a setup do not fit together: everything about the input is checked before any compute. */
export function checkPPOSetup(s: PPOSetup): void {
  checkPPOConfig(s.config);
  const { policy, value, formatter } = s;
  if (!s.ref && !loraConfigOf(s.config))
    throw new Error('ppo: a reference model is needed (or LoRA, whose reference is the base)');
  if (s.ref === policy) throw new Error('ppo: the reference must be a separate copy of the policy');
  const ctx = policy.maxPositions;
  for (const [name, m] of [
    ['reference', s.ref ?? policy],
    ['value model trunk', value.trunk],
  ] as const)
    if (m.config.vocabSize !== policy.config.vocabSize || m.maxPositions !== ctx)
      throw new Error(
        `${name}: vocabulary ${m.config.vocabSize} / context ${m.maxPositions} differ from the policy's ` +
          `${policy.config.vocabSize} / ${ctx}`,
      );
  if (formatter.tokenizer.vocabSize > policy.config.vocabSize)
    throw new Error(
      `tokenizer has ${formatter.tokenizer.vocabSize} ids, the policy's vocabulary only ${policy.config.vocabSize}`,
    );
}
