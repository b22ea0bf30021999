/**
 * The two labeler pools. Training labelers write demonstrations and rank samples; held-out labelers only judge the
 * evaluation, and weigh things differently (more tone and politeness, less brevity and format), so a policy that
 * merely fits the training labelers' taste does not win the evaluation for free. Both pools dislike hedging and
 * padding, for different reasons in different amounts (the held-out pool through tone, the training pool more
 * through concision); they disagree about polite openers, which the held-out pool likes and the training pool, on
 * balance, does not.
 */
import { Rng } from '../../tensor/random.js';
import { pick } from '../world/random.js';
import type { LabelerGroup } from './labeler.js';
import { type LabelerWeights, SimulatedLabeler } from './simulated.js';
import { HEDGES, OPENERS, PADS, PLAIN_STYLE, type WritingStyle } from './writing.js';

export const TRAINING_WEIGHTS: LabelerWeights = {
  correctness: 4,
  constraints: 2,
  concision: 1.2,
  tone: 0.8,
  politeness: 0,
  // Calibrated (with the jitter below) so that the pool agrees on ~73 % of pairwise comparisons of the demo's own
  // samples, as the paper's labelers did on model outputs.
  noise: 0.55,
};

/**
 * The training pool's writing habits on average (each writer's rates scatter around these): what people write when
 * asked to demonstrate a good answer. Most demonstrations carry a habit; about a third are the plain reference.
 */
export const TRAINING_STYLE: Omit<WritingStyle, 'phrases'> = {
  opener: 0.15,
  restate: 0.2,
  hedge: 0.45,
  pad: 0.45,
  slip: 0.05,
  ignoreConstraint: 0.06,
};

export const HELDOUT_WEIGHTS: LabelerWeights = {
  correctness: 4,
  constraints: 1.2,
  concision: 0.6,
  tone: 1.5,
  politeness: 0.4,
  // Less noise than the training pool's for the same ~73 % agreement: these weights leave more near-ties.
  noise: 0.5,
};

export interface PoolOptions {
  /** Labelers in the pool (default 5). */
  size?: number;
  /** Overrides of the pool's base weights (noise included). */
  weights?: Partial<LabelerWeights>;
  /** Overrides of the training pool's writing habits (held-out labelers do not write). */
  style?: Partial<Omit<WritingStyle, 'phrases'>>;
}

/** A writer's own habits: each base rate scaled by a log-normal factor (capped at 0.9), and phrases of their own. */
function writer(rng: Rng, base: Omit<WritingStyle, 'phrases'>): WritingStyle {
  const rate = (r: number) => Math.min(0.9, r * Math.exp(0.6 * rng.normal()));
  return {
    opener: rate(base.opener),
    restate: rate(base.restate),
    hedge: rate(base.hedge),
    pad: rate(base.pad),
    slip: rate(base.slip),
    ignoreConstraint: rate(base.ignoreConstraint),
    phrases: { opener: pick(rng, OPENERS), hedge: pick(rng, HEDGES), pad: pick(rng, PADS) },
  };
}

/** Labelers with the base weights, each scaled by its own log-normal factor, politeness shifted per person. */
function pool(
  group: LabelerGroup,
  base: LabelerWeights,
  seed: number,
  opts: PoolOptions,
  style: Omit<WritingStyle, 'phrases'> | null,
): SimulatedLabeler[] {
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
    };
    const writes = style ? writer(rng, style) : PLAIN_STYLE;
    return new SimulatedLabeler(`${group}-${i}`, group, weights, rng.nextU32(), writes);
  });
}

export function trainingPool(seed: number, opts: PoolOptions = {}): SimulatedLabeler[] {
  return pool('train', TRAINING_WEIGHTS, seed, opts, { ...TRAINING_STYLE, ...opts.style });
}

export function heldoutPool(seed: number, opts: PoolOptions = {}): SimulatedLabeler[] {
  return pool('heldout', HELDOUT_WEIGHTS, seed, opts, null);
}
