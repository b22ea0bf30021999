// Batching shared by every trainer: seeded shuffles, validation splits, and epochs of batches with a resumable
// position. (Padding token rows into model inputs is models/score.ts's padRight, which the scorers use too.)
import { Rng, Tensor } from '../tensor/index.js';

/** A seeded Fisher–Yates permutation of 0..n-1. */
export function shuffled(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * `passes` passes over items, each in a fresh seeded order, cut into minibatches of `size` (the last may be smaller):
 * the update schedule of the on-policy trainers (PPO's epochs, GRPO's μ iterations) over one rollout.
 */
export function* minibatches<T>(items: readonly T[], size: number, passes: number, rng: Rng): Generator<T[]> {
  for (let pass = 0; pass < passes; pass++) {
    const order = shuffled(items.length, rng);
    for (let at = 0; at < order.length; at += size) yield order.slice(at, at + size).map((i) => items[i]);
  }
}

/** Holds out floor(fraction · n) records, chosen by a seeded shuffle; the rest keep their file order. */
export function splitValidation<T>(records: T[], fraction: number, seed: number): { train: T[]; val: T[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new Error(`val fraction must be in [0, 1), got ${fraction}`);
  const nVal = Math.floor(records.length * fraction);
  const held = new Set(shuffled(records.length, new Rng(seed)).slice(0, nVal));
  return {
    train: records.filter((_, i) => !held.has(i)),
    val: records.filter((_, i) => held.has(i)),
  };
}

/** Where an epoch-based run stands: the epoch, the next batch in it, and the epoch's order (null before its shuffle). */
export interface EpochPosition {
  epoch: number;
  batch: number;
  order: number[] | null;
}

/** Epochs of shuffled batches (the last one of an epoch may be short), each epoch's order drawn from rng. */
export class EpochBatches<E> {
  position: EpochPosition = { epoch: 0, batch: 0, order: null };
  readonly perEpoch: number;

  constructor(
    readonly items: E[],
    readonly batchSize: number,
    readonly epochs: number,
    private readonly rng: Rng,
  ) {
    this.perEpoch = Math.ceil(items.length / batchSize);
  }

  get totalSteps(): number {
    return this.perEpoch * this.epochs;
  }

  /** True when the last batch taken ended its epoch. */
  get epochEnded(): boolean {
    return this.position.batch === this.perEpoch;
  }

  /** Epochs done, fractional: what the metrics call "epoch". */
  get progress(): number {
    return this.position.epoch + this.position.batch / this.perEpoch;
  }

  next(): E[] {
    if (this.epochEnded) this.position = { epoch: this.position.epoch + 1, batch: 0, order: null };
    const p = this.position;
    p.order ??= shuffled(this.items.length, this.rng);
    const picked = p.order.slice(p.batch * this.batchSize, (p.batch + 1) * this.batchSize).map((i) => this.items[i]);
    p.batch++;
    return picked;
  }
}

/**
 * Endless batches of indices 0..n-1 for the on-policy trainers' prompts: each pass over them in an order of its own,
 * seeded by seed + 1 + pass, so a resumed run (from `state`) draws the same prompts.
 */
export class IndexCycle {
  private epoch = 0;
  private index = 0;
  private order: number[];

  constructor(
    readonly n: number,
    private readonly seed: number,
  ) {
    this.order = shuffled(n, new Rng(seed + 1));
  }

  next(batchSize: number): number[] {
    const out: number[] = [];
    while (out.length < batchSize) {
      if (this.index === this.order.length) {
        this.epoch++;
        this.index = 0;
        this.order = shuffled(this.n, new Rng(this.seed + 1 + this.epoch));
      }
      out.push(this.order[this.index++]);
    }
    return out;
  }

  get state(): { epoch: number; index: number } {
    return { epoch: this.epoch, index: this.index };
  }

  set state(s: { epoch: number; index: number }) {
    this.epoch = s.epoch;
    this.index = s.index;
    this.order = shuffled(this.n, new Rng(this.seed + 1 + this.epoch));
  }
}

/**
 * Next-token batches over a token stream (PPO-ptx's pretraining corpus): consecutive windows of seqLen + 1 ids,
 * taken in order and cycled; `cursor` is the resumable position.
 */
export class LmWindows {
  readonly windows: number[][] = [];
  cursor = 0;

  constructor(
    ids: number[],
    readonly seqLen: number,
    context: number,
  ) {
    if (seqLen > context) throw new Error(`ptxSeqLen ${seqLen} exceeds the context of ${context}`);
    for (let at = 0; at + seqLen + 1 <= ids.length; at += seqLen) this.windows.push(ids.slice(at, at + seqLen + 1));
    if (this.windows.length === 0)
      throw new Error(`pretraining corpus has ${ids.length} tokens, fewer than one window of ${seqLen + 1}`);
  }

  /** n windows as inputs (n, seqLen) and their flat next-token targets (n·seqLen). */
  next(n: number): { ids: Tensor; targets: Tensor } {
    const L = this.seqLen;
    const ids = Tensor.empty([n, L], 'i32');
    const targets = Tensor.empty([n * L], 'i32');
    for (let b = 0; b < n; b++) {
      const w = this.windows[this.cursor];
      this.cursor = (this.cursor + 1) % this.windows.length;
      ids.i32.set(w.slice(0, L), b * L);
      targets.i32.set(w.slice(1), b * L);
    }
    return { ids, targets };
  }
}
