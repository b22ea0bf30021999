// Learning-rate schedules as pure functions of the step: lr times the factor of Hugging Face transformers'
// get_*_schedule_with_warmup. Pass the number of optimizer steps already taken (0 for the first update), as
// LambdaLR does, so the first update of a warmup runs at lr 0.
import { check } from '../tensor/tensor.js';

export interface WarmupOptions {
  lr: number;
  warmupSteps: number;
}

export interface DecayOptions extends WarmupOptions {
  totalSteps: number;
}

export interface CosineOptions extends DecayOptions {
  /** Floor the cosine decays to (HF's min_lr). */
  minLr?: number;
}

function checkSteps(op: string, step: number, warmupSteps: number, totalSteps = warmupSteps): void {
  check(Number.isInteger(step) && step >= 0, op, () => `step must be an integer >= 0, got ${step}`);
  check(
    Number.isInteger(warmupSteps) && warmupSteps >= 0,
    op,
    () => `warmupSteps must be an integer >= 0, got ${warmupSteps}`,
  );
  check(
    Number.isInteger(totalSteps) && totalSteps >= warmupSteps,
    op,
    () => `totalSteps must be an integer >= warmupSteps (${warmupSteps}), got ${totalSteps}`,
  );
}

// Linear ramp from 0 over the warmup; null once it is over.
function warmup(step: number, warmupSteps: number): number | null {
  return step < warmupSteps ? step / Math.max(1, warmupSteps) : null;
}

/** Linear warmup to lr, then constant. */
export function constantWithWarmup(step: number, opts: WarmupOptions): number {
  checkSteps('constantWithWarmup', step, opts.warmupSteps);
  return opts.lr * (warmup(step, opts.warmupSteps) ?? 1);
}

/** Linear warmup to lr, then linear decay to 0 at totalSteps (and 0 after). */
export function linearWithWarmup(step: number, opts: DecayOptions): number {
  checkSteps('linearWithWarmup', step, opts.warmupSteps, opts.totalSteps);
  const factor =
    warmup(step, opts.warmupSteps) ??
    Math.max(0, (opts.totalSteps - step) / Math.max(1, opts.totalSteps - opts.warmupSteps));
  return opts.lr * factor;
}

/**
 * Linear warmup to lr, then a half cosine down to minLr at totalSteps. After totalSteps it stays at minLr (HF's
 * curve would rise again).
 */
export function cosineWithWarmup(step: number, opts: CosineOptions): number {
  const minLr = opts.minLr ?? 0;
  checkSteps('cosineWithWarmup', step, opts.warmupSteps, opts.totalSteps);
  check(minLr >= 0 && minLr <= opts.lr, 'cosineWithWarmup', () => `minLr must be in [0, lr], got ${minLr}`);
  const ramp = warmup(step, opts.warmupSteps);
  if (ramp !== null) return opts.lr * ramp;
  const progress = Math.min(1, (step - opts.warmupSteps) / Math.max(1, opts.totalSteps - opts.warmupSteps));
  const minRate = opts.lr > 0 ? minLr / opts.lr : 0;
  const cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
  return opts.lr * Math.max(0, cosine * (1 - minRate) + minRate);
}
