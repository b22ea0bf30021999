/**
 * The labeler pools. Training labelers write demonstrations and rank samples; held-out labelers only judge the
 * evaluation. Every pool puts correctness and honesty first, as the paper's instructions did (helpful, truthful),
 * and style second; the pools differ in how much, and in taste: the held-out pools are several, each weighing things
 * its own way, so a policy that merely fits the training labelers' taste does not win the evaluation for free, and
 * the headline is the pool least pleased.
 */
import { Rng } from '../../tensor/random.js';
import { pick } from '../world/random.js';
import type { LabelerGroup } from './labeler.js';
import { type LabelerWeights, SimulatedLabeler } from './simulated.js';
import { HEDGES, OPENERS, PADS, PLAIN_STYLE, type WritingStyle } from './writing.js';

export const TRAINING_WEIGHTS: LabelerWeights = {
  correctness: 4,
  honesty: 2,
  constraints: 1.5,
  concision: 1,
  tone: 0.8,
  politeness: 0,
  // Calibrated (with the jitter below) so that the pool agrees on ~73 % of pairwise comparisons of the demo's own
  // samples, as the paper's labelers did on model outputs.
  noise: 0.3,
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
  // Asked about a town they have never heard of, half of writers' answers make one up.
  invent: 0.5,
};

/**
 * The held-out pools: `balanced` likes tone and a polite opener more than the training pool, `strict` weighs
 * correctness, honesty and the instruction's format above all and dislikes openers, `warm` cares least about length
 * and most about friendliness. Noise is set per pool for about the same agreement on model samples.
 */
export const HELDOUT_POOLS = {
  balanced: { correctness: 4, honesty: 2, constraints: 1.2, concision: 0.6, tone: 1.5, politeness: 0.4, noise: 0.35 },
  strict: { correctness: 6, honesty: 3, constraints: 2, concision: 0.4, tone: 0.5, politeness: -0.2, noise: 0.15 },
  warm: { correctness: 3, honesty: 1.5, constraints: 0.8, concision: 0.3, tone: 1.2, politeness: 0.8, noise: 0.25 },
} as const satisfies Record<string, LabelerWeights>;
export type HeldoutPoolName = keyof typeof HELDOUT_POOLS;
export const HELDOUT_POOL_NAMES = Object.keys(HELDOUT_POOLS) as HeldoutPoolName[];

/** The first held-out pool's weights (the one `heldoutPool` builds by default). */
export const HELDOUT_WEIGHTS: LabelerWeights = HELDOUT_POOLS.balanced;

export interface PoolOptions {
  /** Labelers in the pool (default 5). */
  size?: number;
  /** Overrides of the pool's base weights (noise included). */
  weights?: Partial<LabelerWeights>;
  /** Which held-out pool (default 'balanced'); training pools ignore it. */
  pool?: HeldoutPoolName;
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
    invent: rate(base.invent),
    phrases: { opener: pick(rng, OPENERS), hedge: pick(rng, HEDGES), pad: pick(rng, PADS) },
  };
}

/** Labelers with the base weights, each scaled by its own log-normal factor, politeness shifted per person. */
function pool(
  group: LabelerGroup,
  name: string,
  salt: number,
  base: LabelerWeights,
  seed: number,
  opts: PoolOptions,
  style: Omit<WritingStyle, 'phrases'> | null,
): SimulatedLabeler[] {
  const size = opts.size ?? 5;
  if (!Number.isInteger(size) || size < 1) throw new Error(`${name} pool: size must be a positive integer`);
  const w0 = { ...base, ...opts.weights };
  const rng = new Rng(seed ^ salt);
  return Array.from({ length: size }, (_, i) => {
    const jitter = () => Math.exp(0.25 * rng.normal());
    const weights: LabelerWeights = {
      correctness: w0.correctness * jitter(),
      honesty: w0.honesty * jitter(),
      constraints: w0.constraints * jitter(),
      concision: w0.concision * jitter(),
      tone: w0.tone * jitter(),
      politeness: w0.politeness + 0.3 * rng.normal(),
      noise: w0.noise * Math.exp(0.1 * rng.normal()),
    };
    const writes = style ? writer(rng, style) : PLAIN_STYLE;
    return new SimulatedLabeler(`${name}-${i}`, group, weights, rng.nextU32(), writes);
  });
}

export function trainingPool(seed: number, opts: PoolOptions = {}): SimulatedLabeler[] {
  return pool('train', 'train', 0x51ed, TRAINING_WEIGHTS, seed, opts, { ...TRAINING_STYLE, ...opts.style });
}

/** One held-out pool (default 'balanced'); its labelers are named after it ("strict-2"). */
export function heldoutPool(seed: number, opts: PoolOptions = {}): SimulatedLabeler[] {
  const name = opts.pool ?? 'balanced';
  if (!(name in HELDOUT_POOLS))
    throw new Error(`held-out pool: "${name}" is not one of ${HELDOUT_POOL_NAMES.join(', ')}`);
  const id = name === 'balanced' ? 'heldout' : name;
  const salt = 0xbeef + 0x100 * HELDOUT_POOL_NAMES.indexOf(name);
  return pool('heldout', id, salt, HELDOUT_POOLS[name], seed, opts, null);
}

/** Every held-out pool, by name. */
export function heldoutPools(seed: number, opts: PoolOptions = {}): Record<HeldoutPoolName, SimulatedLabeler[]> {
  return Object.fromEntries(HELDOUT_POOL_NAMES.map((pool) => [pool, heldoutPool(seed, { ...opts, pool })])) as Record<
    HeldoutPoolName,
    SimulatedLabeler[]
  >;
}
