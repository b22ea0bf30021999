// GRPO (Shao et al. 2024, DeepSeekMath) and RLOO (Ahmadian et al. 2024): G completions per prompt, no value
// model. Each completion's advantage comes from its own group: GRPO (r − mean)/(std + eps), RLOO r − the mean of
// the other G − 1 (grpo_config.ts; the episodes in grpo_rollout.ts). The policy takes PPO's clipped token-level
// objective (policy_step.ts); KL to the reference (k3) is either a loss term β·KL or subtracted from the reward.
// A trainer on train/'s loop: a step is a rollout (awaited: a verifier may be asynchronous), then μ passes of
// minibatch updates. This file: loading and checking the inputs, the trainer, and trainGrpo.
import type { CausalLM } from '../models/index.js';
import { loadModelFolder } from '../models/index.js';
import { applyLora, loraConfigOf } from '../models/lora.js';
import { add, Rng, scale } from '../tensor/index.js';
import { Formatter } from '../tokenizer/index.js';
import { IndexCycle, minibatches } from '../train/batches.js';
import {
  openRun,
  type RunControls,
  runTrainerAsync,
  type StepOutput,
  type TrainedPart,
  type Trainer,
} from '../train/loop.js';
import { METRIC, type Metrics } from '../train/metrics.js';
import { encodePrompts, loadCausalLM, type PromptSet, readPrompts, saveOutput, startingPromptFormat } from './data.js';
import { checkGrpoConfig, type GrpoConfig, k3Loss } from './grpo_config.js';
import { type GrpoEpisodes, grpoEpisodes, type Sample, sampleRecords } from './grpo_rollout.js';
import { clippedPolicyStep } from './policy_step.js';
import { checkRewards, type Verifier } from './reward_sources.js';
import { referenceLogps } from './rollout.js';
import { SamplesFile } from './samples_file.js';

export {
  ADVANTAGE_ESTIMATORS,
  type AdvantageEstimator,
  checkGrpoConfig,
  type GrpoConfig,
  groupAdvantages,
  grpoDefaults,
  grpoSpec,
  k3Loss,
} from './grpo_config.js';

export interface GrpoOptions extends RunControls {
  /**
   * The policy's model folder (a causal LM with tokenizer.json), usually the SFT model; also the reference. A PEFT
   * adapter folder stands for its base with the adapter merged in.
   */
  policyDir: string;
  /** The base of an adapter folder given as policyDir (default: its adapter_config.json's base_model_name_or_path). */
  base?: string;
  /** A `{"prompt"}` JSONL file, or prompts given in code. */
  prompts: string | PromptSet;
  outDir: string;
  config: GrpoConfig;
  /** A reward model folder. */
  rewardModelDir?: string;
  /** A JS/TS module whose default export is a verifier (prompt, completion) → number. */
  rewardModule?: string;
  /** A verifier given in code (e.g. the demo world's checker), used like a module. */
  verifier?: Verifier;
}

export interface GrpoResult {
  steps: number;
  aborted: boolean;
  /** Mean reward (before any KL) of the first and of the last step run. */
  firstReward: number | null;
  lastReward: number | null;
}

/** Everything checked and loaded before any compute: config, folders, prompts, reward sources. */
async function prepareGrpo(o: GrpoOptions, cfg: GrpoConfig) {
  const prompts = typeof o.prompts === 'string' ? readPrompts(o.prompts) : o.prompts;
  const rewards = await checkRewards(o, cfg.rewardWeights, prompts.texts[0]);

  const { model: policy, tokenizer } = loadCausalLM(o.policyDir, { seed: cfg.seed, base: o.base });
  const lora = loraConfigOf(cfg);
  if (lora) applyLora(policy, lora, { seed: cfg.seed, frozenDtype: cfg.bf16 ? 'bf16' : 'f32' });
  const fmt = new Formatter(tokenizer, o.policyDir, cfg.promptFormat);
  const promptIds = encodePrompts(prompts, fmt, policy.maxPositions, cfg.maxNewTokens);
  // Frozen models (the reward model, the reference) are held in bf16 with --bf16: half their memory.
  const frozen = { dtype: cfg.bf16 ? ('bf16' as const) : ('f32' as const) };
  const { sources, weights } = rewards.load(policy.config.vocabSize, fmt.padId, frozen);
  // The reference is the starting policy, needed only for the KL: with LoRA the policy with its adapters off (one copy
  // of the base serves both), else a frozen copy.
  const refModel: CausalLM | null =
    cfg.beta > 0 && !lora ? loadModelFolder(o.policyDir, { ...frozen, base: o.base }) : null;
  const refLogps = cfg.beta > 0 ? referenceLogps(policy, refModel, cfg.temperature) : null;
  return { policy, refModel, refLogps, tokenizer, fmt, prompts, promptIds, sources, weights };
}

type Prepared = Awaited<ReturnType<typeof prepareGrpo>>;

class GrpoTrainer implements Trainer<Sample[]> {
  readonly stage = 'grpo';
  readonly parts: TrainedPart[];
  readonly rngs: Record<string, Rng>;
  readonly totalSteps: number;
  readonly totalUpdates: number;
  private readonly rng: Rng;
  private readonly prompts: IndexCycle;
  private rollout: GrpoEpisodes | null = null;

  constructor(
    private readonly p: Prepared,
    private readonly cfg: GrpoConfig,
    private readonly samples: SamplesFile,
  ) {
    this.parts = [{ name: 'policy', module: p.policy, lr: cfg.lr, gradNormMetric: METRIC.policyGradNorm }];
    this.rng = new Rng(cfg.seed);
    this.rngs = { sampling: this.rng };
    this.totalSteps = cfg.steps;
    this.totalUpdates = cfg.steps * cfg.iterations * Math.ceil((cfg.batchSize * cfg.groupSize) / cfg.miniBatchSize);
    this.prompts = new IndexCycle(p.promptIds.length, cfg.seed);
    p.policy.eval(); // no dropout: the rollout's and the update's log-probs must come from the same function
    p.refModel?.eval();
  }

  /** Samples G completions per prompt and scores them: old log-probs, rewards, KL, group advantages. */
  async beforeStep(): Promise<void> {
    this.rollout = await grpoEpisodes(this.p, this.cfg, this.prompts.next(this.cfg.batchSize), this.rng.nextU32());
  }

  /** μ passes of shuffled minibatches. */
  *updates(): Iterable<Sample[][]> {
    for (const mb of minibatches(this.rollout!.samples, this.cfg.miniBatchSize, this.cfg.iterations, this.rng))
      yield [mb];
  }

  /** The clipped objective with the group advantage at every token, + β·k3 unless the KL is in the reward. */
  step(mb: Sample[]): StepOutput {
    const { p, cfg } = this;
    const pl = clippedPolicyStep(p.policy, mb, (e) => e.response.map(() => e.advantage), cfg);
    let loss = pl.loss;
    if (p.refLogps !== null && !cfg.klInReward) {
      const refLogp = pl.packed.grid<Sample>((e) => e.refLogp);
      loss = add(loss, scale(k3Loss(pl.logp, refLogp, pl.packed.respMask), cfg.beta));
    }
    return { loss, metrics: pl.metrics };
  }

  endStep(step: number): Metrics {
    const r = this.rollout!;
    if (this.samples.due(step)) this.samples.append(sampleRecords(step, this.p.prompts.texts, r));
    this.rollout = null;
    return r.metrics;
  }

  status(m: Metrics): string {
    const kl = m[METRIC.kl] === undefined ? '' : ` kl ${Number(m[METRIC.kl]).toFixed(3)}`;
    return `reward ${Number(m.reward).toFixed(3)}${kl} len ${Number(m['completions/mean_length']).toFixed(1)}`;
  }

  saveState() {
    return { state: this.prompts.state };
  }

  loadState(s: Record<string, unknown>): void {
    this.prompts.state = s as IndexCycle['state'];
  }

  onResume(step: number): void {
    this.samples.resumeAt(step);
  }
}

/**
 * Trains the policy with GRPO or RLOO; writes metrics.jsonl, samples.jsonl, grpo_config.json, checkpoints/ and the
 * final policy (a Hugging Face folder) into outDir. Resumes exactly from the newest checkpoint with `resume`.
 */
export async function trainGrpo(o: GrpoOptions): Promise<GrpoResult> {
  checkGrpoConfig(o.config);
  const promptFormat = startingPromptFormat(o.policyDir, o.base, o.config.promptFormat);
  const cfg = { ...o.config, promptFormat };
  const say = o.log ?? ((line: string) => console.error(line));
  const run = {
    ...o,
    config: {
      ...cfg,
      policy: o.policyDir,
      prompts: typeof o.prompts === 'string' ? o.prompts : null,
      rewardModel: o.rewardModelDir ?? null,
      rewardModule: o.rewardModule ?? null,
    },
    log: say,
    // With a constant lr more steps only extend the run.
    resumableFields: ['saveEvery', 'sampleEvery', ...(cfg.lrScheduler === 'constant' ? ['steps'] : [])],
  };
  const resuming = openRun('grpo', run);
  const p = await prepareGrpo(o, cfg);
  say(
    `grpo: ${p.promptIds.length} prompts, ${cfg.estimator} advantages over groups of ${cfg.groupSize}, rewards ` +
      p.sources.map((s, k) => `${p.weights[k]}×${s.name}`).join(' + '),
  );
  const samples = new SamplesFile(o.outDir, cfg.sampleEvery);
  samples.open(resuming);
  let firstReward: number | null = null;
  let lastReward: number | null = null;
  const trainer = new GrpoTrainer(p, cfg, samples);
  const result = await runTrainerAsync(trainer, resuming, {
    ...run,
    onStep: (step, m) => {
      firstReward ??= Number(m.reward);
      lastReward = Number(m.reward);
      o.onStep?.(step, m);
    },
  });
  if (!result.stopped) {
    const { merge, saveDtype: dtype } = o.config;
    saveOutput(p.policy, p.tokenizer, o.outDir, { baseModel: o.policyDir, merge, dtype });
    say(`grpo: saved the policy to ${o.outDir}`);
  }
  for (const t of p.refModel?.parameters() ?? []) t.dispose();
  return { steps: result.steps, aborted: result.stopped, firstReward, lastReward };
}
