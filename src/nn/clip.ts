// Gradient-norm clipping as torch.nn.utils.clip_grad_norm_, with the norm summed in float64.
import { native } from '../tensor/native.js';
import { check, type Tensor } from '../tensor/tensor.js';

/**
 * Scales every gradient by maxNorm / (norm + 1e-6) when that is below 1, where norm is the L2 norm of all gradients
 * together, and returns norm (before clipping). Parameters without a gradient are skipped, a shared one counted once.
 * A non-finite norm is returned without touching the gradients (skip the step); maxNorm = Infinity only measures.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  check(maxNorm >= 0, 'clipGradNorm', () => `maxNorm must be >= 0, got ${maxNorm}`);
  const grads = new Set<Tensor>();
  for (const p of params) if (p.grad) grads.add(p.grad);
  let sumSq = 0;
  for (const g of grads) sumSq += native.sumSquares(g.f32);
  const norm = Math.sqrt(sumSq);
  const coef = maxNorm / (norm + 1e-6);
  if (Number.isFinite(norm) && coef < 1) for (const g of grads) native.scaleInPlace(g.f32, coef);
  return norm;
}
