// The KL penalty of RLHF: per-token estimators of KL(π ‖ π_ref) from sampled tokens, and the controllers that set
// its coefficient β (fixed, or adaptive as in Ziegler et al. 2019).

export type KLEstimator = 'k1' | 'k3';

/**
 * Per-token KL estimate from log-probabilities of the sampled tokens under the policy and the reference.
 * k1 = log π − log π_ref (unbiased, can be negative); k3 = (r − 1) − log r with r = π_ref/π (unbiased, never
 * negative, lower variance; Schulman, "Approximating KL divergence", 2020).
 */
export function klPerToken(logp: readonly number[], refLogp: readonly number[], estimator: KLEstimator): number[] {
  if (logp.length !== refLogp.length)
    throw new Error(`klPerToken: ${logp.length} policy log-probs but ${refLogp.length} reference ones`);
  return logp.map((lp, i) => {
    if (estimator === 'k1') return lp - refLogp[i];
    const logRatio = refLogp[i] - lp;
    return Math.expm1(logRatio) - logRatio;
  });
}

export interface KLControllerState {
  kind: 'fixed' | 'adaptive';
  value: number;
}

export interface KLController {
  /** The current coefficient β. */
  readonly value: number;
  /** Feeds back the KL measured on a batch of nSteps episodes. */
  update(currentKl: number, nSteps: number): void;
  getState(): KLControllerState;
  setState(state: KLControllerState): void;
}

function restore(kind: KLControllerState['kind'], state: KLControllerState): number {
  if (state.kind !== kind || !Number.isFinite(state.value))
    throw new Error(`KL controller: cannot restore ${JSON.stringify(state)} into a ${kind} controller`);
  return state.value;
}

export class FixedKLController implements KLController {
  constructor(public value: number) {}
  update(): void {}
  getState(): KLControllerState {
    return { kind: 'fixed', value: this.value };
  }
  setState(state: KLControllerState): void {
    this.value = restore('fixed', state);
  }
}

/**
 * Ziegler et al. (2019): a proportional controller that drives the measured KL towards `target`:
 * e = clip(KL/target − 1, −0.2, 0.2), β ← β·(1 + e·nSteps/horizon).
 */
export class AdaptiveKLController implements KLController {
  constructor(
    public value: number,
    readonly target: number,
    readonly horizon: number,
  ) {
    if (!(target > 0) || !(horizon > 0))
      throw new Error(`AdaptiveKLController: target (${target}) and horizon (${horizon}) must be > 0`);
  }
  update(currentKl: number, nSteps: number): void {
    const error = Math.min(0.2, Math.max(-0.2, currentKl / this.target - 1));
    this.value *= 1 + (error * nSteps) / this.horizon;
  }
  getState(): KLControllerState {
    return { kind: 'adaptive', value: this.value };
  }
  setState(state: KLControllerState): void {
    this.value = restore('adaptive', state);
  }
}

export function makeKLController(opts: {
  klCoef: number;
  adaptiveKl: boolean;
  targetKl: number;
  klHorizon: number;
}): KLController {
  return opts.adaptiveKl
    ? new AdaptiveKLController(opts.klCoef, opts.targetKl, opts.klHorizon)
    : new FixedKLController(opts.klCoef);
}
