// Step 3 of InstructGPT: PPO (and PPO-ptx) against a reward, with a KL penalty to the frozen SFT reference, as a
// trainer on train/'s loop. Bandit episodes: one sampled response per prompt, the reward at its last token, −β·KL at
// every token; GAE with a value model of its own; the clipped surrogate; optionally γ_ptx × the LM loss on
// pretraining text added to the policy's gradients in the same update. A step is a rollout, then ppoEpochs ×
// minibatches updates of the policy and the value model (each with its own AdamW and gradient clip); the weights'
// moving average is kept after every policy update. Everything that decides the next step is checkpointed, so a
// resumed run repeats an uninterrupted one exactly.
import { join } from 'node:path';
import type { CausalLM, ScalarModel } from '../models/index.js';
import { applyLora, hasLora, loraConfigOf, saveTrained } from '../models/lora.js';
import { crossEntropy, keep, native, Rng, reshape, scale, slice, Tensor } from '../tensor/index.js';
import type { Formatter } from '../tokenizer/index.js';
import { IndexCycle, shuffled } from '../train/batches.js';
import {
  openRun,
  type RunOptions,
  runTrainer,
  type StepOutput,
  type TrainedPart,
  type Trainer,
} from '../train/loop.js';
import { METRIC, type Metrics } from '../train/metrics.js';
import { encodePrompts, type PromptSet, saveOutput } from './data.js';
import { gae, whiten } from './gae.js';
import { type KLController, type KLControllerState, type KLEstimator, klPerToken, makeKLController } from './kl.js';
import { checkPPOConfig, type PPOConfig } from './ppo_config.js';
import { policyLoss, valueLoss } from './ppo_loss.js';
import type { RewardFn } from './reward_fn.js';
import {
  appendSamples,
  mean,
  type Packed,
  pack,
  referenceLogps,
  rollout,
  tokenLogps,
  truncateSamples,
} from './rollout.js';

export { checkPPOConfig, type PPOConfig, ppoDefaults, ppoSpec } from './ppo_config.js';

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
  private readonly ema = new Map<string, Tensor>();
  private readonly rng: Rng;
  /** Prompt token ids, as SFT trained on them (the formatter's). */
  readonly promptIds: number[][];
  private readonly ptxWindows: number[][];
  private readonly prompts: IndexCycle;
  private ptxCursor = 0;
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
    this.ptxWindows = s.ptxTokens != null ? ptxWindows(s.ptxTokens, c.ptxSeqLen, ctx) : [];
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
    for (const [name, p] of policy.namedTrainableParameters()) {
      const copy = keep(Tensor.empty(p.shape));
      copy.f32.set(p.f32);
      this.ema.set(name, copy);
    }
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
    const episodes: Episode[] = rows.map((r, b) => {
      const kl = klPerToken(oldLogp[b], refLogp[b], c.klEstimator as KLEstimator);
      const rewards = kl.map((k) => -beta * k);
      rewards[rewards.length - 1] += scores[b];
      const { advantages, returns } = gae(rewards, oldValues[b], c.gamma, c.lam);
      return {
        ...r,
        promptText: promptTexts[b],
        responseText: responseTexts[b],
        oldLogp: oldLogp[b],
        oldValues: oldValues[b],
        advantages,
        returns,
        score: scores[b],
        kl: kl.reduce((a, x) => a + x, 0),
      };
    });
    if (c.whitenAdvantages) {
      const white = whiten(episodes.map((e) => e.advantages));
      episodes.forEach((e, b) => {
        e.advantages = white[b];
      });
    }
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
    const ptx = this.ptxWindows.length > 0 && c.ptxCoef > 0;
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
      const { ids, targets } = this.ptxBatch();
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

  private ptxBatch(): { ids: Tensor; targets: Tensor } {
    const { ptxBatchSize: n, ptxSeqLen: L } = this.config;
    const ids = Tensor.empty([n, L], 'i32');
    const targets = Tensor.empty([n * L], 'i32');
    for (let b = 0; b < n; b++) {
      const w = this.ptxWindows[this.ptxCursor];
      this.ptxCursor = (this.ptxCursor + 1) % this.ptxWindows.length;
      ids.i32.set(w.slice(0, L), b * L);
      targets.i32.set(w.slice(1), b * L);
    }
    return { ids, targets };
  }

  /** The moving average of the policy's weights, after every policy update. */
  afterUpdate(): void {
    const d = this.config.emaDecay;
    for (const [name, p] of this.s.policy.namedTrainableParameters()) {
      const e = this.ema.get(name)!;
      native.scaleInPlace(e.f32, d);
      native.addInPlace(e.f32, p.f32, 1 - d);
    }
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
    if (this.s.quiet) return;
    const cut = (t: string, n: number) => {
      const one = JSON.stringify(t).slice(1, -1);
      return one.length > n ? `${one.slice(0, n - 1)}…` : one.padEnd(n);
    };
    const lines = [`samples at step ${step}:`, `  ${'prompt'.padEnd(30)} | ${'response'.padEnd(50)} | score`];
    for (const e of episodes.slice(0, this.config.samplesShown))
      lines.push(`  ${cut(e.promptText, 30)} | ${cut(e.responseText, 50)} | ${e.score.toFixed(3)}`);
    console.error(lines.join('\n'));
  }

  saveState() {
    const state: TrainerState = { kl: this.kl.getState(), ...this.prompts.state, ptxCursor: this.ptxCursor };
    return { state: state as unknown as Record<string, unknown>, tensors: { ema: this.ema } };
  }

  loadState(s: Record<string, unknown>, tensors: Record<string, Map<string, Tensor>>): void {
    const st = s as unknown as TrainerState;
    for (const [name, t] of tensors.ema) {
      const own = this.ema.get(name);
      if (!own || own.numel !== t.numel) throw new Error(`checkpoint EMA tensor "${name}" does not fit the policy`);
      own.f32.set(t.f32);
    }
    this.kl.setState(st.kl);
    this.prompts.state = { epoch: st.epoch, index: st.index };
    this.ptxCursor = st.ptxCursor;
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
      [join(dir, 'ema'), this.ema],
    ] as const)
      saveOutput(policy, formatter.tokenizer, to, { baseModel: bases.policy, merge, values, dtype });
    saveTrained(value, join(dir, 'value'), { baseModel: bases.value, merge, dtype });
  }

  /** Releases the EMA copies. */
  dispose(): void {
    for (const t of this.ema.values()) t.dispose();
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

/** Consecutive windows of seqLen + 1 tokens of the PPO-ptx corpus (inputs and their next-token targets). */
function ptxWindows(ids: number[], seqLen: number, context: number): number[][] {
  if (seqLen > context) throw new Error(`ptxSeqLen ${seqLen} exceeds the context of ${context}`);
  const out: number[][] = [];
  for (let at = 0; at + seqLen + 1 <= ids.length; at += seqLen) out.push(ids.slice(at, at + seqLen + 1));
  if (out.length === 0)
    throw new Error(`pretraining corpus has ${ids.length} tokens, fewer than one window of ${seqLen + 1}`);
  return out;
}
