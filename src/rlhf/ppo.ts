// Step 3 of InstructGPT: PPO (and PPO-ptx) against a reward, with a KL penalty to the frozen SFT reference.
// Bandit episodes: one sampled response per prompt, the reward at its last token, −β·KL at every token; GAE with
// a value model of its own; the clipped surrogate; optionally γ_ptx × the LM loss on pretraining text accumulated
// into the same optimizer step. Everything that decides the next step is checkpointed, so a resumed run repeats an
// uninterrupted one exactly.
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CausalLM,
  generate,
  hfConfigOf,
  modelFromConfig,
  type ScalarModel,
  savePretrained,
  saveScalarPretrained,
} from '../models/index.js';
import { AdamW, clipGradNorm, type Module } from '../nn/index.js';
import { formatLineError, parseJsonl } from '../store/jsonl.js';
import {
  backward,
  crossEntropy,
  keep,
  native,
  neg,
  noGrad,
  Rng,
  reshape,
  scale,
  slice,
  Tensor,
  tidy,
} from '../tensor/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { loadLatestCheckpoint, saveCheckpoint } from '../train/checkpoint.js';
import { printConfig, saveRunConfig } from '../train/config.js';
import { type Metrics, MetricsLog } from '../train/metrics.js';
import { Progress } from '../train/progress.js';
import { gae, whiten } from './gae.js';
import { type KLController, type KLControllerState, type KLEstimator, klPerToken, makeKLController } from './kl.js';
import { policyLoss, valueLoss } from './ppo_loss.js';
import type { RewardFn } from './reward_fn.js';

export interface PPOConfig {
  /** PPO iterations: each samples one batch of episodes and optimises on it. */
  steps: number;
  /** Prompts (episodes) per iteration. */
  batchSize: number;
  miniBatchSize: number;
  /** Passes over each batch of episodes. */
  ppoEpochs: number;
  lr: number;
  valueLr: number;
  weightDecay: number;
  maxGradNorm: number;
  maxNewTokens: number;
  temperature: number;
  /** Wrap each prompt in the tokenizer's chat template as a user turn. */
  chatTemplate: boolean;
  /** β: the initial KL coefficient. */
  klCoef: number;
  /** 'k1' (log π − log π_ref) or 'k3'. */
  klEstimator: string;
  adaptiveKl: boolean;
  /** Target KL per episode (summed over tokens) of the adaptive controller. */
  targetKl: number;
  klHorizon: number;
  gamma: number;
  lam: number;
  clipRange: number;
  clipRangeValue: number;
  whitenAdvantages: boolean;
  emaDecay: number;
  /** γ_ptx: weight of the pretraining LM loss (used only with a pretraining corpus). */
  ptxCoef: number;
  /** Pretraining windows per minibatch. */
  ptxBatchSize: number;
  /** Tokens per pretraining window. */
  ptxSeqLen: number;
  /** Print a table of sample responses every this many steps (0: never). */
  sampleEvery: number;
  samplesShown: number;
  checkpointEvery: number;
  seed: number;
}

/** InstructGPT's PPO settings where the paper gives them (β 0.02, ε 0.2, EMA 0.992, γ 1, γ_ptx 27.8), TRL's else. */
export const ppoDefaults: PPOConfig = {
  steps: 256,
  batchSize: 16,
  miniBatchSize: 4,
  ppoEpochs: 4,
  lr: 1e-5,
  valueLr: 1e-5,
  weightDecay: 0,
  maxGradNorm: 1,
  maxNewTokens: 64,
  temperature: 1,
  chatTemplate: false,
  klCoef: 0.02,
  klEstimator: 'k1',
  adaptiveKl: false,
  targetKl: 6,
  klHorizon: 10000,
  gamma: 1,
  lam: 0.95,
  clipRange: 0.2,
  clipRangeValue: 0.2,
  whitenAdvantages: true,
  emaDecay: 0.992,
  ptxCoef: 27.8,
  ptxBatchSize: 4,
  ptxSeqLen: 128,
  sampleEvery: 20,
  samplesShown: 4,
  checkpointEvery: 50,
  seed: 0,
};

/** Throws naming the field when a merged config is out of range. */
export function checkPPOConfig(c: PPOConfig, source = 'ppo config'): void {
  const bad = (field: string, why: string) => new Error(`${source}: field "${field}" ${why}`);
  const positiveInts: (keyof PPOConfig)[] = [
    'steps',
    'batchSize',
    'miniBatchSize',
    'ppoEpochs',
    'maxNewTokens',
    'ptxBatchSize',
    'ptxSeqLen',
    'checkpointEvery',
  ];
  for (const k of positiveInts)
    if (!Number.isInteger(c[k]) || (c[k] as number) < 1) throw bad(k, `must be an integer >= 1, got ${c[k]}`);
  for (const k of ['sampleEvery', 'samplesShown', 'seed'] as const)
    if (!Number.isInteger(c[k]) || c[k] < 0) throw bad(k, `must be an integer >= 0, got ${c[k]}`);
  if (c.miniBatchSize > c.batchSize) throw bad('miniBatchSize', `(${c.miniBatchSize}) exceeds batchSize`);
  if (c.klEstimator !== 'k1' && c.klEstimator !== 'k3') throw bad('klEstimator', 'must be "k1" or "k3"');
  for (const k of ['lr', 'valueLr', 'weightDecay', 'klCoef', 'ptxCoef', 'maxGradNorm'] as const)
    if (!(c[k] >= 0) || !Number.isFinite(c[k])) throw bad(k, `must be a finite number >= 0, got ${c[k]}`);
  for (const k of ['targetKl', 'klHorizon', 'temperature', 'clipRange', 'clipRangeValue'] as const)
    if (!(c[k] > 0)) throw bad(k, `must be > 0, got ${c[k]}`);
  for (const k of ['gamma', 'lam', 'emaDecay'] as const)
    if (!(c[k] >= 0 && c[k] <= 1)) throw bad(k, `must be in [0, 1], got ${c[k]}`);
}

/** Prompts with where each came from (file:line), for errors. */
export interface PromptSet {
  texts: string[];
  where: string[];
}

/** Reads a `{"prompt"}` JSONL file; every bad line is reported as file:line, and an empty file is an error. */
export function readPrompts(file: string): PromptSet {
  if (!existsSync(file)) throw new Error(`${file}: prompts file not found`);
  const text = readFileSync(file, 'utf8');
  const { records, errors } = parseJsonl('prompts', text, { maxTextChars: 1_000_000 }, file);
  if (errors.length > 0) throw new Error(errors.slice(0, 10).map(formatLineError).join('\n'));
  if (records.length === 0) throw new Error(`${file}: no prompts`);
  const where: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() !== '') where.push(`${file}:${i + 1}`);
  });
  return { texts: records.map((r) => r.prompt), where };
}

/** Prompts given in code (tests, the demo). */
export function inlinePrompts(texts: string[]): PromptSet {
  return { texts, where: texts.map((_, i) => `prompt ${i}`) };
}

export interface PPOSetup {
  /** Trained in place; starts as the SFT model. */
  policy: CausalLM;
  /** The frozen SFT model (a separate copy). */
  ref: CausalLM;
  /** The value model, usually initialised from the reward model. */
  value: ScalarModel;
  reward: RewardFn;
  tokenizer: Tokenizer;
  prompts: PromptSet;
  /** Pretraining text for PPO-ptx (null: plain PPO). */
  ptxText?: string | null;
  config: PPOConfig;
  /** Run folder: metrics.jsonl, samples.jsonl, ppo_config.json, checkpoints/, and the final model. */
  outDir: string;
  /** No printing (tests). */
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

// A right-padded batch of prompt+response rows, with grids over the T−1 next-token positions.
export interface Packed<E extends Rollout = Episode> {
  ids: Tensor;
  mask: Tensor;
  /** Next-token targets (B, T−1): the response tokens, −100 elsewhere. */
  targets: Tensor;
  /** (B, T−1): 1 where targets holds a response token. */
  respMask: Tensor;
  T: number;
  grid: (get: (e: E) => readonly number[]) => Tensor;
}

/** Prompt and response token ids of one sampled episode. */
export interface Rollout {
  prompt: number[];
  response: number[];
}

export function pack<E extends Rollout>(eps: E[]): Packed<E> {
  const B = eps.length;
  const T = Math.max(...eps.map((e) => e.prompt.length + e.response.length));
  const ids = Tensor.empty([B, T], 'i32');
  const mask = Tensor.empty([B, T]);
  const targets = Tensor.empty([B, T - 1], 'i32');
  const respMask = Tensor.empty([B, T - 1]);
  targets.i32.fill(-100);
  respMask.f32.fill(0);
  eps.forEach((e, b) => {
    const seq = [...e.prompt, ...e.response];
    for (let t = 0; t < T; t++) {
      ids.i32[b * T + t] = t < seq.length ? seq[t] : 0;
      mask.f32[b * T + t] = t < seq.length ? 1 : 0;
    }
    for (let j = 0; j < e.response.length; j++) {
      const at = b * (T - 1) + e.prompt.length - 1 + j;
      targets.i32[at] = e.response[j];
      respMask.f32[at] = 1;
    }
  });
  const grid = (get: (e: E) => readonly number[]) => {
    const g = Tensor.empty([B, T - 1]);
    g.f32.fill(0);
    eps.forEach((e, b) => {
      const row = get(e);
      for (let j = 0; j < row.length; j++) g.f32[b * (T - 1) + e.prompt.length - 1 + j] = row[j];
    });
    return g;
  };
  return { ids, mask, targets, respMask, T, grid };
}

/** Reads each row's response entries of a (B, T−1) grid. */
export function ungrid(g: Tensor, eps: Rollout[]): number[][] {
  const W = g.size(1);
  return eps.map((e, b) =>
    Array.from(g.f32.subarray(b * W + e.prompt.length - 1, b * W + e.prompt.length - 1 + e.response.length)),
  );
}

/** Next-token logits (B, T−1, V) at temperature, and the log-probs of the targets (B, T−1; 0 where ignored). */
export function tokenLogps<E extends Rollout>(
  model: CausalLM,
  p: Packed<E>,
  temperature: number,
): { logits: Tensor; logp: Tensor } {
  const h = model.hidden(p.ids, { attentionMask: p.mask });
  let logits = model.head(slice(h, 1, 0, p.T - 1));
  if (temperature !== 1) logits = scale(logits, 1 / temperature);
  return { logits, logp: neg(crossEntropy(logits, p.targets, { reduction: 'none' })) };
}

/** Mean entropy of the next-token distributions at the masked positions. */
export function meanEntropy(logits: Tensor, respMask: Tensor): number {
  const V = logits.size(-1);
  const l = logits.f32;
  const m = respMask.f32;
  let total = 0;
  let n = 0;
  for (let i = 0; i < m.length; i++) {
    if (m[i] === 0) continue;
    const row = l.subarray(i * V, (i + 1) * V);
    let max = Number.NEGATIVE_INFINITY;
    for (const x of row) max = Math.max(max, x);
    let z = 0;
    let zx = 0;
    for (const x of row) {
      const e = Math.exp(x - max);
      z += e;
      zx += e * (x - max);
    }
    total += Math.log(z) - zx / z;
    n++;
  }
  return total / n;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function shuffled(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

// Loads a tensor group into a module's parameters and releases the loaded copies.
function loadInto(module: Module, tensors: Map<string, Tensor>): void {
  module.loadStateDict(tensors, { strict: false });
  for (const t of tensors.values()) t.dispose();
}

interface TrainerState {
  rng: number[];
  kl: KLControllerState;
  epoch: number;
  index: number;
  ptxCursor: number;
  policyOptim: ReturnType<AdamW['stateDict']>['meta'];
  valueOptim: ReturnType<AdamW['stateDict']>['meta'];
}

export class PPOTrainer {
  readonly config: PPOConfig;
  readonly kl: KLController;
  /** PPO iterations completed. */
  step = 0;
  private readonly policyOpt: AdamW;
  private readonly valueOpt: AdamW;
  private readonly ema = new Map<string, Tensor>();
  private readonly rng: Rng;
  private readonly promptIds: number[][];
  private readonly ptxWindows: number[][];
  private epoch = 0;
  private index = 0;
  private order: number[];
  private ptxCursor = 0;
  private readonly metrics: MetricsLog;
  private readonly eos: number[];

  constructor(private readonly s: PPOSetup) {
    const c = s.config;
    checkPPOConfig(c);
    this.config = c;
    const { policy, ref, value, tokenizer } = s;
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
    if (tokenizer.vocabSize > policy.config.vocabSize)
      throw new Error(
        `tokenizer has ${tokenizer.vocabSize} ids, the policy's vocabulary only ${policy.config.vocabSize}`,
      );
    this.promptIds = s.prompts.texts.map((text, i) => {
      const shaped = c.chatTemplate
        ? tokenizer.applyChatTemplate([{ role: 'user', content: text }], { addGenerationPrompt: true })
        : text;
      const ids = tokenizer.encode(shaped, { addSpecialTokens: !c.chatTemplate });
      if (ids.length === 0) throw new Error(`${s.prompts.where[i]}: prompt is empty`);
      if (ids.length + c.maxNewTokens > ctx)
        throw new Error(
          `${s.prompts.where[i]}: prompt of ${ids.length} tokens + maxNewTokens ${c.maxNewTokens} exceeds the ` +
            `context of ${ctx}`,
        );
      return ids;
    });
    if (this.promptIds.length === 0) throw new Error('no prompts');
    this.ptxWindows = [];
    if (s.ptxText != null) {
      if (c.ptxSeqLen > ctx) throw new Error(`ptxSeqLen ${c.ptxSeqLen} exceeds the context of ${ctx}`);
      const ids = tokenizer.encode(s.ptxText, { addSpecialTokens: false });
      for (let at = 0; at + c.ptxSeqLen + 1 <= ids.length; at += c.ptxSeqLen)
        this.ptxWindows.push(ids.slice(at, at + c.ptxSeqLen + 1));
      if (this.ptxWindows.length === 0)
        throw new Error(`pretraining corpus has ${ids.length} tokens, fewer than one window of ${c.ptxSeqLen + 1}`);
    }
    this.eos = tokenizer.eosId === null ? [] : [tokenizer.eosId];
    this.kl = makeKLController(c);
    this.rng = new Rng(c.seed);
    this.order = shuffled(this.promptIds.length, new Rng(c.seed + 1));
    // Dropout off: log-probs of the rollout and of the update must come from the same function.
    policy.eval();
    ref.eval();
    value.eval();
    this.policyOpt = new AdamW(policy.parameters(), { lr: c.lr, weightDecay: c.weightDecay });
    this.valueOpt = new AdamW(value.parameters(), { lr: c.valueLr, weightDecay: c.weightDecay });
    for (const [name, p] of policy.namedParameters()) {
      const copy = keep(Tensor.empty(p.shape));
      copy.f32.set(p.f32);
      this.ema.set(name, copy);
    }
    this.metrics = new MetricsLog(join(s.outDir, 'metrics.jsonl'), 'ppo');
  }

  private get checkpointRoot(): string {
    return join(this.s.outDir, 'checkpoints');
  }

  /** Restores the newest checkpoint of the run folder, if any; returns the step it resumes after. */
  resume(): number {
    const ck = loadLatestCheckpoint(this.checkpointRoot, ['policy', 'value', 'policy_optim', 'value_optim', 'ema']);
    if (!ck) return 0;
    const st = ck.state as unknown as TrainerState;
    loadInto(this.s.policy, ck.tensors.policy);
    loadInto(this.s.value, ck.tensors.value);
    this.policyOpt.loadStateDict({ meta: st.policyOptim, tensors: ck.tensors.policy_optim });
    this.valueOpt.loadStateDict({ meta: st.valueOptim, tensors: ck.tensors.value_optim });
    for (const t of [...ck.tensors.policy_optim.values(), ...ck.tensors.value_optim.values()]) t.dispose();
    for (const [name, t] of ck.tensors.ema) {
      const own = this.ema.get(name);
      if (!own || own.numel !== t.numel) throw new Error(`checkpoint EMA tensor "${name}" does not fit the policy`);
      own.f32.set(t.f32);
      t.dispose();
    }
    this.rng.setState(st.rng);
    this.kl.setState(st.kl);
    this.epoch = st.epoch;
    this.index = st.index;
    this.order = shuffled(this.promptIds.length, new Rng(this.config.seed + 1 + this.epoch));
    this.ptxCursor = st.ptxCursor;
    this.step = ck.step;
    this.metrics.truncateFrom(this.step + 1);
    truncateSamples(join(this.s.outDir, 'samples.jsonl'), this.step + 1);
    return this.step;
  }

  /** Writes a checkpoint of everything the next step depends on. */
  checkpoint(): string {
    const state: TrainerState = {
      rng: this.rng.getState(),
      kl: this.kl.getState(),
      epoch: this.epoch,
      index: this.index,
      ptxCursor: this.ptxCursor,
      policyOptim: this.policyOpt.stateDict().meta,
      valueOptim: this.valueOpt.stateDict().meta,
    };
    return saveCheckpoint(this.checkpointRoot, {
      step: this.step,
      state: state as unknown as Record<string, unknown>,
      tensors: {
        policy: new Map(this.s.policy.namedParameters()),
        value: new Map(this.s.value.namedParameters()),
        policy_optim: this.policyOpt.stateDict().tensors,
        value_optim: this.valueOpt.stateDict().tensors,
        ema: this.ema,
      },
    });
  }

  // The next batchSize prompt indices; each epoch over the prompts has its own seeded order.
  private nextBatch(): number[] {
    const out: number[] = [];
    while (out.length < this.config.batchSize) {
      if (this.index === this.order.length) {
        this.epoch++;
        this.index = 0;
        this.order = shuffled(this.promptIds.length, new Rng(this.config.seed + 1 + this.epoch));
      }
      out.push(this.order[this.index++]);
    }
    return out;
  }

  private decode(ids: number[]): string {
    const t = this.s.tokenizer;
    return t.decode(ids.filter((id) => !this.eos.includes(id) && t.idToToken(id) !== null));
  }

  // Samples one response per prompt and scores it: old log-probs, values, rewards, advantages and returns.
  private rollout(batch: number[]): { episodes: Episode[]; metrics: Metrics } {
    const c = this.config;
    const { policy, ref, value, tokenizer } = this.s;
    const prompts = batch.map((i) => this.promptIds[i]);
    const started = performance.now();
    const gen = generate(policy, prompts, {
      maxNewTokens: c.maxNewTokens,
      temperature: c.temperature,
      seed: this.rng.nextU32(),
      eosTokenIds: this.eos,
      padTokenId: tokenizer.padId ?? this.eos[0] ?? 0,
    });
    const sampling = (performance.now() - started) / 1000;
    const rows = prompts.map((p, b) => ({ prompt: p, response: gen.tokens[b] }));
    const { oldLogp, refLogp, oldValues, entropy } = noGrad(() =>
      tidy(() => {
        const p = pack(rows);
        const pol = tokenLogps(policy, p, c.temperature);
        const refs = tokenLogps(ref, p, c.temperature);
        const v = slice(value.scoresPerToken(p.ids, { attentionMask: p.mask }), 1, 0, p.T - 1);
        return {
          oldLogp: ungrid(pol.logp, rows),
          refLogp: ungrid(refs.logp, rows),
          oldValues: ungrid(v, rows),
          entropy: meanEntropy(pol.logits, p.respMask),
        };
      }),
    );
    const promptTexts = batch.map((i) => this.s.prompts.texts[i]);
    const responseTexts = rows.map((r) => this.decode(r.response));
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
    const meanKl = mean(episodes.map((e) => e.kl));
    return {
      episodes,
      metrics: {
        'objective/kl': meanKl,
        'objective/scores': mean(scores),
        'objective/rlhf_reward': mean(episodes.map((e) => e.score - beta * e.kl)),
        'objective/entropy': entropy,
        'objective/kl_coef': beta,
        'response/length': mean(rows.map((r) => r.response.length)),
        'response/eos_fraction': mean(gen.finishReasons.map((f) => (f === 'eos' ? 1 : 0))),
        // Sampling alone (the prefill included), beside time/rollout, which also scores and runs the frozen models.
        'time/generate': sampling,
        'rollout/tok/s': gen.tokens.reduce((n, t) => n + t.length, 0) / sampling,
      },
    };
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

  // ppoEpochs passes over the episodes in shuffled minibatches: a policy step (PPO loss, then the ptx loss
  // accumulated into the same gradients) and a value step, each with its own optimizer.
  private optimize(episodes: Episode[]): Metrics {
    const c = this.config;
    const { policy, value } = this.s;
    const stats: Record<string, number[]> = {};
    const note = (k: string, v: number) => {
      if (!stats[k]) stats[k] = [];
      stats[k].push(v);
    };
    for (let epoch = 0; epoch < c.ppoEpochs; epoch++) {
      const order = shuffled(episodes.length, this.rng);
      for (let start = 0; start < order.length; start += c.miniBatchSize) {
        const mb = order.slice(start, start + c.miniBatchSize).map((i) => episodes[i]);
        tidy(() => {
          const p = pack(mb);
          const { logp } = tokenLogps(policy, p, c.temperature);
          const pl = policyLoss(
            logp,
            p.grid((e) => e.oldLogp),
            p.grid((e) => e.advantages),
            p.respMask,
            c.clipRange,
          );
          note('policy/loss', pl.loss.item());
          note('policy/clipfrac', pl.clipfrac);
          note('policy/approxkl', pl.approxkl);
          backward(pl.loss);
        });
        if (this.ptxWindows.length > 0 && c.ptxCoef > 0)
          tidy(() => {
            const { ids, targets } = this.ptxBatch();
            const logits = policy.forward(ids);
            const lm = crossEntropy(reshape(logits, [targets.numel, logits.size(-1)]), targets);
            note('ptx/loss', lm.item());
            backward(scale(lm, c.ptxCoef));
          });
        note('policy/grad_norm', clipGradNorm(policy.parameters(), c.maxGradNorm));
        this.policyOpt.step();
        this.policyOpt.zeroGrad();
        this.updateEma();
        tidy(() => {
          const p = pack(mb);
          const v = slice(value.scoresPerToken(p.ids, { attentionMask: p.mask }), 1, 0, p.T - 1);
          const vl = valueLoss(
            v,
            p.grid((e) => e.oldValues),
            p.grid((e) => e.returns),
            p.respMask,
            c.clipRangeValue,
          );
          note('val/value_loss', vl.loss.item());
          note('val/clipfrac', vl.clipfrac);
          backward(vl.loss);
        });
        note('val/grad_norm', clipGradNorm(value.parameters(), c.maxGradNorm));
        this.valueOpt.step();
        this.valueOpt.zeroGrad();
      }
    }
    return Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, mean(v)]));
  }

  private updateEma(): void {
    const d = this.config.emaDecay;
    for (const [name, p] of this.s.policy.namedParameters()) {
      const e = this.ema.get(name)!;
      native.scaleInPlace(e.f32, d);
      native.addInPlace(e.f32, p.f32, 1 - d);
    }
  }

  /** One PPO iteration: rollout, optimisation, KL controller update; returns (and logs) its metrics. */
  trainStep(): Metrics {
    const t0 = performance.now();
    const { episodes, metrics: rollout } = this.rollout(this.nextBatch());
    const t1 = performance.now();
    const optimize = this.optimize(episodes);
    const t2 = performance.now();
    this.kl.update(rollout['objective/kl'] as number, episodes.length);
    this.step++;
    const metrics: Metrics = {
      ...rollout,
      ...optimize,
      lr: this.config.lr,
      'time/rollout': (t1 - t0) / 1000,
      'time/optimize': (t2 - t1) / 1000,
    };
    this.metrics.write(this.step, metrics);
    const c = this.config;
    if (c.sampleEvery > 0 && (this.step % c.sampleEvery === 0 || this.step === 1)) this.samples(episodes);
    return metrics;
  }

  private samples(episodes: Episode[]): void {
    const path = join(this.s.outDir, 'samples.jsonl');
    for (const e of episodes)
      appendFileSync(
        path,
        `${JSON.stringify({ step: this.step, prompt: e.promptText, response: e.responseText, score: e.score, kl: e.kl })}\n`,
      );
    if (this.s.quiet) return;
    const cut = (t: string, n: number) => {
      const one = JSON.stringify(t).slice(1, -1);
      return one.length > n ? `${one.slice(0, n - 1)}…` : one.padEnd(n);
    };
    const lines = [`samples at step ${this.step}:`, `  ${'prompt'.padEnd(30)} | ${'response'.padEnd(50)} | score`];
    for (const e of episodes.slice(0, this.config.samplesShown))
      lines.push(`  ${cut(e.promptText, 30)} | ${cut(e.responseText, 50)} | ${e.score.toFixed(3)}`);
    console.error(lines.join('\n'));
  }

  /**
   * Trains up to config.steps (from wherever resume() left it). `stopAfter` ends the run early after that many
   * completed steps, and `shouldStop` (e.g. set by SIGINT) after the current one; either way a checkpoint is written.
   */
  train(opts: { stopAfter?: number; shouldStop?: () => boolean } = {}): Metrics[] {
    const c = this.config;
    const out: Metrics[] = [];
    if (this.step === 0) {
      // A fresh run into a used folder replaces its records instead of appending to them.
      this.metrics.truncateFrom(1);
      truncateSamples(join(this.s.outDir, 'samples.jsonl'), 1);
      saveRunConfig(this.s.outDir, 'ppo_config.json', c);
      if (!this.s.quiet) printConfig('ppo config', c);
    }
    const progress = this.s.quiet ? null : new Progress('ppo', c.steps);
    const last = Math.min(c.steps, opts.stopAfter ?? c.steps);
    while (this.step < last) {
      const m = this.trainStep();
      out.push(m);
      const fmt = (k: string) => Number(m[k] ?? Number.NaN).toFixed(3);
      progress?.update(
        this.step,
        `reward ${fmt('objective/rlhf_reward')} score ${fmt('objective/scores')} kl ${fmt('objective/kl')} ` +
          `β ${fmt('objective/kl_coef')} len ${fmt('response/length')}`,
      );
      const stopping = this.step === last || opts.shouldStop?.();
      if (this.step % c.checkpointEvery === 0 || stopping) this.checkpoint();
      if (stopping) break;
    }
    progress?.stop();
    return out;
  }

  /**
   * Writes the final models: the policy as a Hugging Face folder (with the tokenizer) in dir, its EMA weights in
   * dir/ema, and the value model in dir/value.
   */
  save(dir = this.s.outDir): void {
    const { policy, value, tokenizer } = this.s;
    savePretrained(policy, dir);
    tokenizer.save(dir);
    const ema = modelFromConfig(hfConfigOf(policy), 'policy');
    ema.loadStateDict(this.ema, { strict: false });
    savePretrained(ema, join(dir, 'ema'));
    tokenizer.save(join(dir, 'ema'));
    for (const p of ema.parameters()) p.dispose();
    saveScalarPretrained(value, join(dir, 'value'));
  }

  /** Releases optimizer state and EMA copies. */
  dispose(): void {
    this.policyOpt.dispose();
    this.valueOpt.dispose();
    for (const t of this.ema.values()) t.dispose();
  }
}

/** Drops sample records of steps >= from (a resumed run writes them again). */
export function truncateSamples(path: string, from: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => {
      if (!l.trim()) return false;
      try {
        return JSON.parse(l).step < from;
      } catch {
        return false;
      }
    });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, kept.map((l) => `${l}\n`).join(''));
  renameSync(tmp, path);
}
