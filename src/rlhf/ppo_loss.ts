// The PPO losses as pure functions of tensors: the clipped surrogate for the policy and the clipped value loss.
// Every tensor is shaped alike (e.g. (B, T) over token positions); mask is f32, 1 where a response token is.
import { add, check, clamp, exp, maximum, mul, neg, scale, shapeStr, sub, sum, type Tensor } from '../tensor/index.js';

function maskCount(mask: Tensor, op: string, others: Tensor[]): number {
  for (const t of others)
    check(
      t.shape.join() === mask.shape.join(),
      op,
      () => `shape ${shapeStr(t.shape)} does not match mask ${shapeStr(mask.shape)}`,
    );
  let n = 0;
  for (const m of mask.f32) n += m;
  check(n > 0, op, () => 'mask selects no token');
  return n;
}

function maskedMean(x: Tensor, mask: Tensor, n: number): Tensor {
  return scale(sum(mul(x, mask)), 1 / n);
}

// Fraction of masked positions where a > b (strictly): how often clipping took over.
function fractionGreater(a: Tensor, b: Tensor, mask: Tensor, n: number): number {
  let c = 0;
  const af = a.f32;
  const bf = b.f32;
  const mf = mask.f32;
  for (let i = 0; i < mf.length; i++) if (mf[i] > 0 && af[i] > bf[i]) c++;
  return c / n;
}

export interface PolicyLossResult {
  loss: Tensor;
  /** Share of tokens where the clipped term was the larger loss. */
  clipfrac: number;
  /** ½·mean((log π − log π_old)²), a cheap estimate of KL(π_old ‖ π). */
  approxkl: number;
}

/**
 * Clipped surrogate (Schulman et al. 2017): ratio = exp(logp − oldLogp),
 * loss = mean over the mask of max(−A·ratio, −A·clip(ratio, 1−ε, 1+ε)).
 */
export function policyLoss(
  logp: Tensor,
  oldLogp: Tensor,
  advantages: Tensor,
  mask: Tensor,
  clipRange: number,
): PolicyLossResult {
  const n = maskCount(mask, 'policyLoss', [logp, oldLogp, advantages]);
  const logRatio = sub(logp, oldLogp);
  const ratio = exp(logRatio);
  const unclipped = mul(neg(advantages), ratio);
  const clipped = mul(neg(advantages), clamp(ratio, 1 - clipRange, 1 + clipRange));
  const loss = maskedMean(maximum(unclipped, clipped), mask, n);
  let sq = 0;
  const lr = logRatio.f32;
  const mf = mask.f32;
  for (let i = 0; i < mf.length; i++) sq += mf[i] * lr[i] * lr[i];
  return { loss, clipfrac: fractionGreater(clipped, unclipped, mask, n), approxkl: (0.5 * sq) / n };
}

export interface ValueLossResult {
  loss: Tensor;
  /** Share of tokens where the clipped value's error was the larger one. */
  clipfrac: number;
}

/**
 * Clipped value loss: v_clip = oldValues + clip(values − oldValues, −ε, ε),
 * loss = ½·mean over the mask of max((values − R)², (v_clip − R)²).
 */
export function valueLoss(
  values: Tensor,
  oldValues: Tensor,
  returns: Tensor,
  mask: Tensor,
  clipRange: number,
): ValueLossResult {
  const n = maskCount(mask, 'valueLoss', [values, oldValues, returns]);
  const err = sub(values, returns);
  const clippedErr = sub(add(oldValues, clamp(sub(values, oldValues), -clipRange, clipRange)), returns);
  const unclipped = mul(err, err);
  const clipped = mul(clippedErr, clippedErr);
  const loss = scale(maskedMean(maximum(unclipped, clipped), mask, n), 0.5);
  return { loss, clipfrac: fractionGreater(clipped, unclipped, mask, n) };
}
