// Step 3 of InstructGPT: PPO (and PPO-ptx) against a reward, with a KL penalty to the frozen SFT reference, as a
// trainer on train/'s loop. Bandit episodes: one sampled response per prompt, the reward at its last token, −β·KL at
// every token; GAE with a value model of its own; the clipped surrogate; optionally γ_ptx × the LM loss on
// pretraining text added to the policy's gradients in the same update. A step is a rollout, then ppoEpochs ×
// minibatches updates of the policy and the value model (each with its own AdamW and gradient clip); the weights'
// moving average is kept after every policy update. Everything that decides the next step is checkpointed, so a
// resumed run repeats an uninterrupted one exactly.
import { join } from 'node:path';
import type { ScalarModel } from '../models/index.js';
import { applyLora, hasLora, loraConfigOf, saveTrained } from '../models/lora.js';
import { crossEntropy, Rng, reshape, scale, slice, type Tensor } from '../tensor/index.js';
import { IndexCycle, LmWindows, shuffled } from '../train/batches.js';
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
import { klShapedAdvantages } from './gae.js';
import { type KLController, type KLControllerState, type KLEstimator, makeKLController } from './kl.js';
import { checkPPOConfig, type PPOConfig, type PPOSetup } from './ppo_config.js';
import { policyLoss, valueLoss } from './ppo_loss.js';
import {
  appendSamples,
  mean,
  type Packed,
  pack,
  referenceLogps,
  rollout,
  sampleTable,
  tokenLogps,
  truncateSamples,
} from './rollout.js';

export { checkPPOConfig, type PPOConfig, type PPOSetup, ppoDefaults, ppoSpec } from './ppo_config.js';

// One episode: token ids and per-response-token arrays (index j = the j-th response token).
interface Episode {
  prompt: number[];
  response: number[];
  promptText: string;
  responseText: string;
  oldLogp: number[];
  oldValues: number[];
  advantages: number[];
  returns: number[];
  score: number;
  kl: number;
}

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
  private rollout: { episodes: Episode[]; metrics: Metrics } | null = null;

  constructor(private readonly s: PPOSetup) {
    const c = s.config;
    checkPPOConfig(c);
    this.config = c;
    const { policy, value, formatter } = s;
    const lora = loraConfigOf(c);
    if (!s.ref && !lora) throw new Error('ppo: a reference model is needed (or LoRA, whose reference is the base)');
    if (s.ref === policy) throw new Error('ppo: the reference must be a separate copy of the policy');
    const ref = s.ref ?? policy;
    const ctx = policy.maxPositions;
    // Everything about the input is checked before any compute.
    for (const [name, m] of [
      ['reference', ref],
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
    this.promptIds = encodePrompts(s.prompts, formatter, ctx, c.maxNewTokens);
    this.ptx = s.ptxTokens != null ? new LmWindows(s.ptxTokens, c.ptxSeqLen, ctx) : null;
    this.kl = makeKLController(c);
    this.rng = new Rng(c.seed);
    this.rngs = { sampling: this.rng };
    this.prompts = new IndexCycle(this.promptIds.length, c.seed);
    this.totalSteps = c.steps;
    this.totalUpdates = c.steps * c.ppoEpochs * Math.ceil(c.batchSize / c.miniBatchSize);
    // Dropout off: log-probs of the rollout and of the update must come from the same function.
    // With LoRA the policy and value model train adapters (a value model may come with its own: valueOnRewardModel).
    if (lora) {
      if (hasLora(policy)) throw new Error('ppo: the policy already has adapters');
      applyLora(policy, lora, { seed: c.seed });
      if (!hasLora(value)) applyLora(value, lora, { seed: c.seed + 1 });
    }
    policy.eval();
    ref.eval();
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
    // A fresh run into a used folder replaces its samples instead of appending to them.
    if (!resuming) truncateSamples(join(this.s.outDir, 'samples.jsonl'), 0);
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

  // Samples one response per prompt and scores it: old log-probs, values, rewards, advantages and returns.
  private sample(batch: number[]): { episodes: Episode[]; metrics: Metrics } {
    const c = this.config;
    const { policy, ref, value, formatter } = this.s;
    const r = rollout(
      policy,
      batch.map((i) => this.promptIds[i]),
      {
        maxNewTokens: c.maxNewTokens,
        temperature: c.temperature,
        seed: this.rng.nextU32(),
        formatter,
        chunk: c.batchSize,
        dtype: c.bf16 ? 'bf16' : 'f32',
        ref: referenceLogps(policy, ref ?? null, c.temperature),
        values: (p) => valuesOf(value, p),
      },
    );
    const { rows } = r;
    const [oldLogp, refLogp, oldValues] = [r.oldLogp, r.refLogp!, r.values!];
    const promptTexts = batch.map((i) => this.s.prompts.texts[i]);
    const responseTexts = rows.map((r) => formatter.decode(r.response));
    const scores = this.s.reward(promptTexts, responseTexts, {
      prompts: rows.map((r) => r.prompt),
      responses: rows.map((r) => r.response),
    });
    if (scores.length !== rows.length || !scores.every(Number.isFinite))
      throw new Error(`reward: expected ${rows.length} finite scores, got ${JSON.stringify(scores)}`);
    const beta = this.kl.value;
    const shaped = klShapedAdvantages(rows, oldLogp, refLogp, oldValues, scores, {
      beta,
      estimator: c.klEstimator as KLEstimator,
      gamma: c.gamma,
      lam: c.lam,
      whiten: c.whitenAdvantages,
    });
    const episodes: Episode[] = rows.map((r, b) => ({
      ...r,
      ...shaped[b],
      promptText: promptTexts[b],
      responseText: responseTexts[b],
      oldLogp: oldLogp[b],
      oldValues: oldValues[b],
      score: scores[b],
    }));
    return {
      episodes,
      metrics: {
        [METRIC.kl]: mean(episodes.map((e) => e.kl)),
        [METRIC.scores]: mean(scores),
        [METRIC.rlhfReward]: mean(episodes.map((e) => e.score - beta * e.kl)),
        [METRIC.entropy]: r.entropy,
        [METRIC.klCoef]: beta,
        [METRIC.responseLength]: mean(rows.map((r) => r.response.length)),
        [METRIC.eosFraction]: mean(r.finishReasons.map((f) => (f === 'eos' ? 1 : 0))),
        // Sampling alone (time/generate), beside time/rollout, which also scores with every model.
        ...r.metrics,
      },
    };
  }

  // A rollout, then ppoEpochs passes over its episodes in shuffled minibatches: each update adds up the policy's
  // PPO loss, the ptx loss and the value loss.
  *updates(): Iterable<PpoBatch[]> {
    const c = this.config;
    const t0 = performance.now();
    this.rollout = this.sample(this.prompts.next(c.batchSize));
    this.rollout.metrics[METRIC.rolloutSeconds] = (performance.now() - t0) / 1000;
    const { episodes } = this.rollout;
    const ptx = this.ptx !== null && c.ptxCoef > 0;
    for (let epoch = 0; epoch < c.ppoEpochs; epoch++) {
      const order = shuffled(episodes.length, this.rng);
      for (let start = 0; start < order.length; start += c.miniBatchSize) {
        const mb = order.slice(start, start + c.miniBatchSize).map((i) => episodes[i]);
        yield [
          { kind: 'policy', episodes: mb },
          ...(ptx ? [{ kind: 'ptx' } as const] : []),
          { kind: 'value', episodes: mb },
        ];
      }
    }
  }

  step(batch: PpoBatch): StepOutput {
    const c = this.config;
    const { policy, value } = this.s;
    if (batch.kind === 'ptx') {
      const { ids, targets } = this.ptx!.next(c.ptxBatchSize);
      const logits = policy.forward(ids);
      const lm = crossEntropy(reshape(logits, [targets.numel, logits.size(-1)]), targets);
      return { loss: scale(lm, c.ptxCoef), metrics: { [METRIC.ptxLoss]: lm.item() }, tokens: targets.numel };
    }
    const p = pack(batch.episodes);
    const grid = (get: (e: Episode) => readonly number[]) => p.grid(get);
    if (batch.kind === 'policy') {
      const { logp } = tokenLogps(policy, p, c.temperature);
      const pl = policyLoss(
        logp,
        grid((e) => e.oldLogp),
        grid((e) => e.advantages),
        p.respMask,
        c.clipRange,
      );
      const metrics = {
        [METRIC.policyLoss]: pl.loss.item(),
        [METRIC.policyClipfrac]: pl.clipfrac,
        [METRIC.policyApproxKl]: pl.approxkl,
      };
      return { loss: pl.loss, metrics };
    }
    const vl = valueLoss(
      valuesOf(value, p),
      grid((e) => e.oldValues),
      grid((e) => e.returns),
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
    const c = this.config;
    if (c.sampleEvery > 0 && (step % c.sampleEvery === 0 || step === 1)) this.samples(step, episodes);
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

  private samples(step: number, episodes: Episode[]): void {
    appendSamples(
      join(this.s.outDir, 'samples.jsonl'),
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
    truncateSamples(join(this.s.outDir, 'samples.jsonl'), step + 1);
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

/** The value model's per-token values over the packed grid's positions. */
function valuesOf(value: ScalarModel, p: Packed): Tensor {
  return slice(value.scoresPerToken(p.ids, { attentionMask: p.mask }), 1, p.from, p.T - 1);
}
