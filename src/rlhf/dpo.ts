// Direct Preference Optimization (Rafailov et al. 2023): the policy is trained on preference pairs directly, its
// implicit reward being β·(log π(y|x) − log π_ref(y|x)). Losses: sigmoid −log σ(β·margin) with label smoothing ε
// (conservative DPO: the label is wrong with probability ε), or IPO (Azar et al. 2023) (margin − 1/2β)² on
// per-token mean log-probs, as TRL does. The reference's log-probs are computed once before training, so no
// reference model is held in memory while the policy trains.
import { join } from 'node:path';
import { type CausalLM, savePretrained } from '../models/index.js';
import {
  add,
  crossEntropy,
  mean,
  mul,
  neg,
  noGrad,
  Rng,
  reshape,
  scale,
  slice,
  sub,
  sum,
  Tensor,
  tidy,
} from '../tensor/index.js';
import { listCheckpoints } from '../train/checkpoint.js';
import { saveRunConfig } from '../train/config.js';
import type { Metrics } from '../train/metrics.js';
import {
  type ComparisonFormat,
  checkModelFolder,
  Formatter,
  loadCausalLM,
  type SftExample,
  sftBatch,
  splitValidation,
} from './data.js';
import { checkLoopConfig, type LoopConfig, runLoop, type TrainerRun } from './loop.js';
import { type DpoPair, encodePairs, readPreferences } from './preferences.js';
import { negLogSigmoid } from './reward.js';

export type DpoLossType = 'sigmoid' | 'ipo';
export const DPO_LOSS_TYPES: readonly DpoLossType[] = ['sigmoid', 'ipo'];

export interface DpoConfig extends LoopConfig {
  /** β: how far the policy may move from the reference (smaller: further). */
  beta: number;
  lossType: DpoLossType;
  /** ε of conservative DPO: the probability that a preference label is flipped (sigmoid loss only). */
  labelSmoothing: number;
  /** GPT-2 residual dropout during training (TRL turns dropout off for DPO); null keeps the model folder's. */
  dropout: number | null;
  /** Share of the comparisons (lines, not pairs) held out when no validation file is given. */
  valFraction: number;
}

/** TRL's DPO defaults (β 0.1, lr 1e-6, sigmoid loss, dropout off). */
export const dpoDefaults: DpoConfig = {
  epochs: 1,
  batchSize: 8,
  lr: 1e-6,
  warmupRatio: 0.1,
  minLrRatio: 0,
  weightDecay: 0,
  maxGradNorm: 1,
  saveEvery: 0,
  seed: 0,
  beta: 0.1,
  lossType: 'sigmoid',
  labelSmoothing: 0,
  dropout: 0,
  valFraction: 0.1,
};

export function checkDpoConfig(c: DpoConfig, source = 'dpo config'): void {
  checkLoopConfig(c, source);
  const bad = (field: string, want: string) =>
    new Error(`${source}: field "${field}" must be ${want}, got ${JSON.stringify((c as never)[field])}`);
  if (!(c.beta > 0) || !Number.isFinite(c.beta)) throw bad('beta', 'a number > 0');
  if (!DPO_LOSS_TYPES.includes(c.lossType)) throw bad('lossType', DPO_LOSS_TYPES.map((t) => `"${t}"`).join(' or '));
  if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 0.5)) throw bad('labelSmoothing', 'in [0, 0.5)');
  if (c.labelSmoothing > 0 && c.lossType !== 'sigmoid')
    throw bad('labelSmoothing', `0 with lossType "${c.lossType}" (label smoothing is for the sigmoid loss)`);
  if (c.dropout !== null && !(c.dropout >= 0 && c.dropout < 1)) throw bad('dropout', 'in [0, 1) or null');
  if (!(c.valFraction >= 0 && c.valFraction < 1)) throw bad('valFraction', 'in [0, 1)');
}

// ---- the loss ----

export interface DpoLossOptions {
  beta: number;
  lossType: DpoLossType;
  labelSmoothing: number;
}

export interface DpoLossResult {
  /** Mean over the pairs. */
  loss: Tensor;
  /** β·(log π − log π_ref) of each chosen and each rejected response: the implicit rewards. */
  chosenRewards: number[];
  rejectedRewards: number[];
}

/**
 * The DPO loss of N pairs from sequence log-probs (each (N)): margin = (π_c − π_r) − (ref_c − ref_r);
 * sigmoid: (1 − ε)·−log σ(β·margin) + ε·−log σ(−β·margin); IPO: (margin − 1/(2β))². Gradients flow into the
 * policy log-probs only (the reference's are constants).
 */
export function dpoLoss(
  policyChosen: Tensor,
  policyRejected: Tensor,
  refChosen: Tensor,
  refRejected: Tensor,
  opts: DpoLossOptions,
): DpoLossResult {
  const margin = sub(sub(policyChosen, policyRejected), sub(refChosen, refRejected));
  let perPair: Tensor;
  if (opts.lossType === 'ipo') {
    const d = add(margin, -1 / (2 * opts.beta));
    perPair = mul(d, d);
  } else {
    const x = scale(margin, opts.beta);
    const e = opts.labelSmoothing;
    perPair = negLogSigmoid(x);
    if (e > 0) perPair = add(scale(perPair, 1 - e), scale(negLogSigmoid(neg(x)), e));
  }
  const implicit = (p: Tensor, r: Tensor) => Array.from(p.f32, (v, i) => opts.beta * (v - r.f32[i]));
  return {
    loss: mean(perPair),
    chosenRewards: implicit(policyChosen, refChosen),
    rejectedRewards: implicit(policyRejected, refRejected),
  };
}

/** TRL's metric names for a batch: rewards/{chosen,rejected,margins,accuracies}, logps/{chosen,rejected}. */
export function dpoMetrics(r: DpoLossResult, policyChosen: number[], policyRejected: number[]): Metrics {
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const { chosenRewards: c, rejectedRewards: j } = r;
  return {
    'rewards/chosen': avg(c),
    'rewards/rejected': avg(j),
    'rewards/margins': avg(c.map((v, i) => v - j[i])),
    // A tie (as at the first step, where policy = reference) is not a correct ordering.
    'rewards/accuracies': avg(c.map((v, i) => (v > j[i] ? 1 : 0))),
    'logps/chosen': avg(policyChosen),
    'logps/rejected': avg(policyRejected),
  };
}

// ---- log-probs ----

/**
 * log π(response | prompt) of each row, summed over the response tokens (EOS included), or their per-token mean
 * (`average`, the IPO form). Rows are full sequences whose first promptLength tokens are the prompt.
 */
export function sequenceLogps(model: CausalLM, rows: SftExample[], padId: number, average: boolean): Tensor {
  const { ids, mask, targets } = sftBatch(rows, padId);
  const logits = model.forward(ids, { attentionMask: mask });
  const [B, T, V] = logits.shape;
  // Ignored targets (prompt, padding) have a loss of 0, so a row sum is the response's log-prob.
  const tokenNll = reshape(
    crossEntropy(reshape(logits, [B * T, V]), reshape(targets, [B * T]), { reduction: 'none' }),
    [B, T],
  );
  const logps = neg(sum(tokenNll, 1));
  if (!average) return logps;
  const inv = Tensor.fromBuffer(
    Float32Array.from(rows, (r) => 1 / (r.ids.length - r.promptLength)),
    [B],
  );
  return mul(logps, inv);
}

const rowsOf = (pairs: DpoPair[]): SftExample[] => [
  ...pairs.map((p) => ({ ids: p.chosen, promptLength: p.promptLength, file: p.file, line: p.line })),
  ...pairs.map((p) => ({ ids: p.rejected, promptLength: p.promptLength, file: p.file, line: p.line })),
];

/** Chosen and rejected log-probs of a batch of pairs, in one forward pass. */
function pairLogps(model: CausalLM, pairs: DpoPair[], padId: number, average: boolean) {
  const n = pairs.length;
  const all = sequenceLogps(model, rowsOf(pairs), padId, average);
  return { chosen: slice(all, 0, 0, n), rejected: slice(all, 0, n, 2 * n) };
}

/** Fills in refChosen / refRejected with the reference model's log-probs (no graph, eval mode). */
export function cacheReferenceLogps(
  ref: CausalLM,
  pairs: DpoPair[],
  opts: { batchSize: number; padId: number; average: boolean },
): void {
  ref.eval();
  for (let i = 0; i < pairs.length; i += opts.batchSize) {
    const chunk = pairs.slice(i, i + opts.batchSize);
    noGrad(() =>
      tidy(() => {
        const { chosen, rejected } = pairLogps(ref, chunk, opts.padId, opts.average);
        chunk.forEach((p, b) => {
          p.refChosen = chosen.f32[b];
          p.refRejected = rejected.f32[b];
        });
      }),
    );
  }
}

/** The loss of a batch of pairs and its metrics (called with gradients on, or under noGrad for evaluation). */
export function dpoBatch(model: CausalLM, pairs: DpoPair[], padId: number, cfg: DpoLossOptions) {
  const { chosen, rejected } = pairLogps(model, pairs, padId, cfg.lossType === 'ipo');
  const n = pairs.length;
  const refC = Tensor.fromBuffer(
    Float32Array.from(pairs, (p) => p.refChosen),
    [n],
  );
  const refR = Tensor.fromBuffer(
    Float32Array.from(pairs, (p) => p.refRejected),
    [n],
  );
  const r = dpoLoss(chosen, rejected, refC, refR, cfg);
  return { loss: r.loss, metrics: dpoMetrics(r, Array.from(chosen.f32), Array.from(rejected.f32)) };
}

/** Held-out loss and metrics over all pairs, weighted by batch size, as `eval/...`. */
export function evaluateDpo(model: CausalLM, pairs: DpoPair[], batchSize: number, padId: number, cfg: DpoLossOptions) {
  const totals: Record<string, number> = {};
  for (let i = 0; i < pairs.length; i += batchSize) {
    const chunk = pairs.slice(i, i + batchSize);
    const m = noGrad(() =>
      tidy(() => {
        const b = dpoBatch(model, chunk, padId, cfg);
        return { loss: b.loss.item(), ...b.metrics };
      }),
    );
    for (const [k, v] of Object.entries(m)) totals[k] = (totals[k] ?? 0) + (Number(v) * chunk.length) / pairs.length;
  }
  return Object.fromEntries(Object.entries(totals).map(([k, v]) => [`eval/${k}`, v])) as Metrics;
}

// ---- training ----

export interface DpoOptions extends TrainerRun {
  config: DpoConfig;
  format?: ComparisonFormat;
  /** The reference model folder (default: modelDir, the model training starts from). */
  refModelDir?: string;
}

export interface DpoResult {
  steps: number;
  aborted: boolean;
  trainPairs: number;
  valPairs: number;
  skipped: string[];
  /** The last held-out evaluation (empty without validation data). */
  eval: Metrics;
}

/** Everything a run needs, checked before training: model folders, data, tokenization. */
function prepareDpo(opts: DpoOptions) {
  checkDpoConfig(opts.config);
  const cfg = opts.config;
  const skipBad = { skipBad: opts.skipBad };
  checkModelFolder(opts.modelDir, 'causal');
  if (opts.refModelDir) checkModelFolder(opts.refModelDir, 'causal');
  // Refused before anything is read or written (dpo_config.json of the earlier run included).
  const checkpoints = join(opts.outDir, 'checkpoints');
  if (!opts.resume && listCheckpoints(checkpoints).length > 0)
    throw new Error(
      `${checkpoints}: holds checkpoints of an earlier run; pass --resume to continue it or choose another --out`,
    );
  const format = opts.format ?? 'auto';
  const data = readPreferences(opts.dataFile, format, skipBad);
  const valData = opts.valFile ? readPreferences(opts.valFile, format, skipBad) : null;
  const { model, tokenizer, dropoutRng, note } = loadCausalLM(opts.modelDir, {
    residPdrop: cfg.dropout,
    seed: cfg.seed,
  });
  const fmt = new Formatter(tokenizer, opts.modelDir);
  const context = model.maxPositions;
  // The split is by line, so no prompt's pairs are in both.
  const lines = valData
    ? { train: data.records, val: valData.records }
    : splitValidation(data.records, cfg.valFraction, cfg.seed);
  const train = encodePairs(lines.train, fmt, context, skipBad);
  const val = lines.val.length > 0 ? encodePairs(lines.val, fmt, context, skipBad) : null;
  const skipped = [data, valData, train, val]
    .flatMap((r) => r?.skipped ?? [])
    .map((e) => `${e.file}:${e.line}: ${e.message}`);
  return { model, tokenizer, dropoutRng, note, fmt, train: train.records, val: val?.records ?? [], skipped };
}

export function trainDpo(opts: DpoOptions): DpoResult {
  const cfg = opts.config;
  const say = opts.log ?? ((line: string) => console.error(line));
  const p = prepareDpo(opts);
  if (p.note) say(p.note);
  for (const s of p.skipped) say(`skipped ${s}`);
  if (p.skipped.length > 0) say(`skipped ${p.skipped.length} bad line(s)`);
  say(`dpo: ${p.train.length} training and ${p.val.length} validation pairs`);
  const lossOpts: DpoLossOptions = { beta: cfg.beta, lossType: cfg.lossType, labelSmoothing: cfg.labelSmoothing };
  const refOpts = { batchSize: cfg.batchSize, padId: p.fmt.padId, average: cfg.lossType === 'ipo' };
  const everyPair = [...p.train, ...p.val];
  if (opts.refModelDir) {
    const ref = loadCausalLM(opts.refModelDir).model;
    if (ref.config.vocabSize !== p.model.config.vocabSize)
      throw new Error(
        `${join(opts.refModelDir, 'config.json')}: vocabulary of ${ref.config.vocabSize}, the policy's is ` +
          `${p.model.config.vocabSize}; the reference must share the policy's tokenizer`,
      );
    cacheReferenceLogps(ref, everyPair, refOpts);
    for (const t of ref.parameters()) t.dispose();
  } else {
    // The starting weights are the reference: score every pair once before the first step changes them.
    cacheReferenceLogps(p.model, everyPair, refOpts);
  }
  saveRunConfig(opts.outDir, 'dpo_config.json', {
    ...cfg,
    model: opts.modelDir,
    ref: opts.refModelDir ?? opts.modelDir,
    data: opts.dataFile,
    val: opts.valFile ?? null,
  });
  let lastEval: Metrics = {};
  const result = runLoop(cfg, {
    stage: 'dpo',
    outDir: opts.outDir,
    model: p.model,
    dropoutRng: p.dropoutRng,
    dataRng: new Rng(cfg.seed + 1),
    train: p.train,
    loss: (batch) => dpoBatch(p.model, batch, p.fmt.padId, lossOpts),
    validate: () => {
      if (p.val.length === 0) return {};
      lastEval = evaluateDpo(p.model, p.val, cfg.batchSize, p.fmt.padId, lossOpts);
      return lastEval;
    },
    resume: opts.resume,
    signal: opts.signal,
    onStep: opts.onStep,
  });
  const base = { ...result, trainPairs: p.train.length, valPairs: p.val.length, skipped: p.skipped };
  if (result.aborted) return { ...base, eval: lastEval };
  savePretrained(p.model, opts.outDir);
  p.tokenizer.save(opts.outDir);
  say(`dpo: saved to ${join(opts.outDir, 'model.safetensors')}`);
  return { ...base, eval: lastEval };
}
