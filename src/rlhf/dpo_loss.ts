// DPO's maths: the sigmoid / IPO loss of sequence log-probs, TRL's metrics, and the policy's and the cached
// reference's log-probs of preference pairs.

import { type CausalLM, responseLogps } from '../models/index.js';
import { add, mean, mul, neg, noGrad, scale, slice, sub, Tensor, tidy } from '../tensor/index.js';
import { METRIC, type Metrics } from '../train/metrics.js';
import { type SftExample, sftBatch } from './data.js';
import type { DpoPair } from './preferences.js';
import { negLogSigmoid } from './ranking_loss.js';

export type DpoLossType = 'sigmoid' | 'ipo';
export const DPO_LOSS_TYPES: readonly DpoLossType[] = ['sigmoid', 'ipo'];

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
    [METRIC.rewardsChosen]: avg(c),
    [METRIC.rewardsRejected]: avg(j),
    [METRIC.rewardsMargins]: avg(c.map((v, i) => v - j[i])),
    // A tie (as at the first step, where policy = reference) is not a correct ordering.
    [METRIC.rewardsAccuracies]: avg(c.map((v, i) => (v > j[i] ? 1 : 0))),
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
  return responseLogps(logits, targets, average ? rows.map((r) => r.ids.length - r.promptLength) : undefined);
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
