// Preallocated key/value buffers for decoding: one head-major (B, kvHeads, maxLen, headDim) pair per layer, so that
// each head's keys are contiguous for the decode step that streams them.
import { check, keep, Tensor, writeKV } from '../tensor/index.js';

/** Positions start, start+1, ..., start+T-1 as an i32 tensor. */
export function positionIds(start: number, T: number): Tensor {
  const t = Tensor.empty([T], 'i32');
  for (let i = 0; i < T; i++) t.i32[i] = start + i;
  return t;
}

export class KVCache {
  readonly keys: Tensor[] = [];
  readonly values: Tensor[] = [];
  /** Positions already written (the same for every row: rows are left-padded to a common length). */
  length = 0;

  constructor(
    readonly batch: number,
    readonly maxLen: number,
    layers: number,
    readonly kvHeads: number,
    readonly headDim: number,
  ) {
    for (let i = 0; i < layers; i++) {
      this.keys.push(keep(Tensor.empty([batch, kvHeads, maxLen, headDim])));
      this.values.push(keep(Tensor.empty([batch, kvHeads, maxLen, headDim])));
    }
  }

  /** Writes this step's keys and values (B, T, kvHeads, headDim) of one layer at the current length. */
  write(layer: number, k: Tensor, v: Tensor): void {
    check(
      this.length + k.shape[1] <= this.maxLen,
      'KVCache',
      () => `${this.length} + ${k.shape[1]} positions exceed the cache of ${this.maxLen}`,
    );
    writeKV(this.keys[layer], k, this.length);
    writeKV(this.values[layer], v, this.length);
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t.dispose();
  }
}
