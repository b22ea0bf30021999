/**
 * The two labeler pools. Training labelers write demonstrations and rank samples; held-out labelers only judge the
 * evaluation, and weigh things differently (more tone and politeness, less brevity and format), so a policy that
 * merely fits the training labelers' taste does not win the evaluation for free.
 */
import { Rng } from '../../tensor/random.js';
import type { LabelerGroup } from './labeler.js';
import { type LabelerWeights, SimulatedLabeler } from './simulated.js';

export const TRAINING_WEIGHTS: LabelerWeights = {
  correctness: 4,
  constraints: 2,
  concision: 1.2,
  tone: 0.8,
  politeness: 0,
  // Calibrated (with the jitter below) so that the pool agrees on ~73 % of pairwise comparisons, as in the paper.
  noise: 1.4,
  varyDemos: 0.25,
};

export const HELDOUT_WEIGHTS: LabelerWeights = {
  correctness: 4,
  constraints: 1.2,
  concision: 0.6,
  tone: 1.5,
  politeness: 0.4,
  // Less noise than the training pool's for the same ~73 % agreement: these weights leave more near-ties.
  noise: 1.2,
  varyDemos: 0.25,
};

export interface PoolOptions {
  /** Labelers in the pool (default 5). */
  size?: number;
  /** Overrides of the pool's base weights (noise included). */
  weights?: Partial<LabelerWeights>;
}

/** Labelers with the base weights, each scaled by its own log-normal factor, politeness shifted per person. */
function pool(group: LabelerGroup, base: LabelerWeights, seed: number, opts: PoolOptions): SimulatedLabeler[] {
  const size = opts.size ?? 5;
  if (!Number.isInteger(size) || size < 1) throw new Error(`${group} pool: size must be a positive integer`);
  const w0 = { ...base, ...opts.weights };
  const rng = new Rng(seed ^ (group === 'train' ? 0x51ed : 0xbeef));
  return Array.from({ length: size }, (_, i) => {
    const jitter = () => Math.exp(0.25 * rng.normal());
    const weights: LabelerWeights = {
      correctness: w0.correctness * jitter(),
      constraints: w0.constraints * jitter(),
      concision: w0.concision * jitter(),
      tone: w0.tone * jitter(),
      politeness: w0.politeness + 0.3 * rng.normal(),
      noise: w0.noise * Math.exp(0.1 * rng.normal()),
      varyDemos: w0.varyDemos,
    };
    return new SimulatedLabeler(`${group}-${i}`, group, weights, rng.nextU32());
  });
}

export function trainingPool(seed: number, opts: PoolOptions = {}): SimulatedLabeler[] {
  return pool('train', TRAINING_WEIGHTS, seed, opts);
}

export function heldoutPool(seed: number, opts: PoolOptions = {}): SimulatedLabeler[] {
  return pool('heldout', HELDOUT_WEIGHTS, seed, opts);
}
