// Step 3 of InstructGPT: PPO (and PPO-ptx) against a reward, with a KL penalty to the frozen SFT reference, as a
// trainer on train/'s loop. Bandit episodes: one sampled response per prompt, the reward at its last token, −β·KL at
// every token; GAE with a value model of its own; the clipped surrogate; optionally γ_ptx × the LM loss on
// pretraining text added to the policy's gradients in the same update. A step is a rollout, then ppoEpochs ×
// minibatches updates of the policy and the value model (each with its own AdamW and gradient clip); the weights'
// moving average is kept after every policy update. Everything that decides the next step is checkpointed, so a
// resumed run repeats an uninterrupted one exactly. The episodes are ppo_episode.ts's, the config and the setup's
// checks ppo_config.ts's, the policy's objective policy_step.ts's; this file is the trainer's state and its updates.
import { join } from 'node:path';
import { applyLora, hasLora, loraConfigOf, saveTrained } from '../models/lora.js';
import { Rng, type Tensor } from '../tensor/index.js';
import { IndexCycle, type LmWindows, minibatches } from '../train/batches.js';
import { WeightAverage } from '../train/ema.js';
import {
  openRun,
  type RunOptions,
  runTrainer,
  type StepOutput,
  type TrainedPart,
  type Trainer,
} from '../train/loop.js';
import { METRIC, type Metrics } from '../train/metrics.js';
import { encodePrompts, saveOutput } from './data.js';
import { type KLController, type KLControllerState, makeKLController } from './kl.js';
import { clippedPolicyStep } from './policy_step.js';
import { checkPPOSetup, type PPOConfig, type PPOSetup } from './ppo_config.js';
import { type Episode, ppoEpisodes, valuesOf } from './ppo_episode.js';
import { valueLoss } from './ppo_loss.js';
import { ptxStep, ptxWindows } from './ptx.js';
import { pack } from './rollout.js';
import { SamplesFile, sampleTable } from './samples_file.js';

export { checkPPOConfig, type PPOConfig, type PPOSetup, ppoDefaults, ppoSpec } from './ppo_config.js';
export type { Episode } from './ppo_episode.js';

type PpoBatch = { kind: 'policy' | 'value'; episodes: Episode[] } | { kind: 'ptx' };

export class PPOTrainer implements Trainer<PpoBatch> {
  readonly stage = 'ppo';
  readonly config: PPOConfig;
  readonly kl: KLController;
  readonly parts: TrainedPart[];
  readonly rngs: Record<string, Rng>;
  readonly totalSteps: number;
  readonly totalUpdates: number;
  readonly extraTensorGroups = ['ema'];
  /** PPO steps completed. */
  stepsDone = 0;
  private readonly ema: WeightAverage;
  private readonly rng: Rng;
  /** Prompt token ids, as SFT trained on them (the formatter's). */
  readonly promptIds: number[][];
  private readonly ptx: LmWindows | null;
  private readonly prompts: IndexCycle;
  private readonly samples: SamplesFile;
  private rollout: { episodes: Episode[]; metrics: Metrics } | null = null;

  constructor(private readonly s: PPOSetup) {
    checkPPOSetup(s);
    const c = s.config;
    this.config = c;
    const { policy, value, formatter } = s;
    const ctx = policy.maxPositions;
    this.promptIds = encodePrompts(s.prompts, formatter, ctx, c.maxNewTokens);
    this.ptx = ptxWindows(s.ptxTokens, c, ctx);
    this.kl = makeKLController(c);
    this.rng = new Rng(c.seed);
    this.rngs = { sampling: this.rng };
    this.prompts = new IndexCycle(this.promptIds.length, c.seed);
    this.samples = new SamplesFile(s.outDir, c.sampleEvery);
    this.totalSteps = c.steps;
    this.totalUpdates = c.steps * c.ppoEpochs * Math.ceil(c.batchSize / c.miniBatchSize);
    // With LoRA the policy and value model train adapters (a value model may come with its own: valueOnRewardModel),
    // and with --bf16 their frozen bases are held in bf16.
    const lora = loraConfigOf(c);
    if (lora) {
      if (hasLora(policy)) throw new Error('ppo: the policy already has adapters');
      const frozenDtype = c.bf16 ? 'bf16' : 'f32';
      applyLora(policy, lora, { seed: c.seed, frozenDtype });
      if (!hasLora(value)) applyLora(value, lora, { seed: c.seed + 1, frozenDtype });
      else if (c.bf16) value.toDtype('bf16', { frozenOnly: true });
    }
    // Dropout off: log-probs of the rollout and of the update must come from the same function.
    policy.eval();
    s.ref?.eval();
    value.eval();
    this.parts = [
      { name: 'policy', module: policy, lr: c.lr, gradNormMetric: METRIC.policyGradNorm },
      { name: 'value', module: value, lr: c.valueLr, gradNormMetric: METRIC.valueGradNorm },
    ];
    this.ema = new WeightAverage(policy);
  }

  /**
   * Trains (or with `resume`, continues) to config.steps on train/'s loop; returns each step's metrics.
   * `stopAfter` ends the run early after that step, with a checkpoint.
   */
  train(opts: Omit<RunOptions, 'outDir' | 'config'> = {}): Metrics[] {
    const c = this.config;
    const run = {
      ...opts,
      outDir: this.s.outDir,
      config: { ...c, ...this.s.inputs },
      // With a constant lr more steps only extend the run.
      resumableFields: ['saveEvery', 'sampleEvery', 'samplesShown', ...(c.lrScheduler === 'constant' ? ['steps'] : [])],
      quiet: opts.quiet ?? this.s.quiet,
    };
    const resuming = openRun(this.stage, run);
    this.samples.open(resuming);
    const out: Metrics[] = [];
    const result = runTrainer(this, resuming, {
      ...run,
      onStep: (step, m) => {
        out.push(m);
        opts.onStep?.(step, m);
      },
    });
    this.stepsDone = result.steps;
    return out;
  }

  // A rollout, then ppoEpochs passes over its episodes in shuffled minibatches: each update adds up the policy's
  // PPO loss, the ptx loss and the value loss.
  *updates(): Iterable<PpoBatch[]> {
    const c = this.config;
    const t0 = performance.now();
    const batch = this.prompts.next(c.batchSize);
    const prompts = { ids: batch.map((i) => this.promptIds[i]), texts: batch.map((i) => this.s.prompts.texts[i]) };
    this.rollout = ppoEpisodes(this.s, prompts, { beta: this.kl.value, seed: this.rng.nextU32() });
    this.rollout.metrics[METRIC.rolloutSeconds] = (performance.now() - t0) / 1000;
    const ptx = this.ptx !== null;
    for (const mb of minibatches(this.rollout.episodes, c.miniBatchSize, c.ppoEpochs, this.rng))
      yield [
        { kind: 'policy', episodes: mb },
        ...(ptx ? [{ kind: 'ptx' } as const] : []),
        { kind: 'value', episodes: mb },
      ];
  }

  step(batch: PpoBatch): StepOutput {
    const c = this.config;
    const { policy, value } = this.s;
    if (batch.kind === 'ptx') return ptxStep(policy, this.ptx!, c);
    if (batch.kind === 'policy') {
      const { loss, metrics } = clippedPolicyStep(policy, batch.episodes, (e) => e.advantages, c);
      return { loss, metrics };
    }
    const p = pack(batch.episodes);
    const vl = valueLoss(
      valuesOf(value, p),
      p.grid<Episode>((e) => e.oldValues),
      p.grid<Episode>((e) => e.returns),
      p.respMask,
      c.clipRangeValue,
    );
    return { loss: vl.loss, metrics: { [METRIC.valueLoss]: vl.loss.item(), [METRIC.valueClipfrac]: vl.clipfrac } };
  }

  /** The moving average of the policy's weights, after every policy update. */
  afterUpdate(): void {
    this.ema.update(this.config.emaDecay);
  }

  endStep(step: number): Metrics {
    const { episodes, metrics } = this.rollout!;
    this.kl.update(metrics[METRIC.kl] as number, episodes.length);
    if (this.samples.due(step)) {
      this.samples.append(
        episodes.map((e) => ({
          step,
          prompt: e.promptText,
          response: e.responseText,
          score: e.score,
          kl: e.kl,
          prompt_ids: e.prompt,
        })),
      );
      if (!this.s.quiet) console.error(sampleTable(step, episodes.slice(0, this.config.samplesShown)));
    }
    this.rollout = null;
    return metrics;
  }

  status(m: Metrics): string {
    const f = (k: string) => Number(m[k] ?? Number.NaN).toFixed(3);
    return (
      `reward ${f(METRIC.rlhfReward)} score ${f(METRIC.scores)} kl ${f(METRIC.kl)} ` +
      `β ${f(METRIC.klCoef)} len ${f(METRIC.responseLength)}`
    );
  }

  saveState() {
    const state: TrainerState = { kl: this.kl.getState(), ...this.prompts.state, ptxCursor: this.ptx?.cursor ?? 0 };
    return { state: state as unknown as Record<string, unknown>, tensors: { ema: this.ema.tensors } };
  }

  loadState(s: Record<string, unknown>, tensors: Record<string, Map<string, Tensor>>): void {
    const st = s as unknown as TrainerState;
    this.ema.load(tensors.ema);
    this.kl.setState(st.kl);
    this.prompts.state = { epoch: st.epoch, index: st.index };
    if (this.ptx) this.ptx.cursor = st.ptxCursor;
  }

  onResume(step: number): void {
    this.stepsDone = step;
    this.samples.resumeAt(step);
  }

  /**
   * Writes the final models: the policy as a Hugging Face folder (with the tokenizer) in dir, its EMA weights in
   * dir/ema, and the value model in dir/value. With LoRA each is an adapter in PEFT's layout (+ merged/ with
   * --merge).
   */
  save(dir = this.s.outDir): void {
    const { policy, value, formatter } = this.s;
    const bases = this.s.baseModels ?? { policy: 'policy', value: 'value' };
    const { merge, saveDtype: dtype } = this.config;
    for (const [to, values] of [
      [dir, undefined],
      [join(dir, 'ema'), this.ema.tensors],
    ] as const)
      saveOutput(policy, formatter.tokenizer, to, { baseModel: bases.policy, merge, values, dtype });
    saveTrained(value, join(dir, 'value'), { baseModel: bases.value, merge, dtype });
  }

  /** Releases the EMA copies. */
  dispose(): void {
    this.ema.dispose();
  }
}

interface TrainerState {
  kl: KLControllerState;
  epoch: number;
  index: number;
  ptxCursor: number;
}
