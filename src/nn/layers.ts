// Layers with Hugging Face parameter names: Linear (weight [out, in]), Conv1D (GPT-2's weight [in, out]),
// Embedding, LayerNorm, RMSNorm, Dropout.
import {
  dropout,
  embedding,
  full,
  layerNorm,
  linear,
  type Rng,
  randn,
  rmsNorm,
  type Tensor,
  zeros,
} from '../tensor/index.js';
import { Module } from './module.js';

/**
 * Something added to a projection's output, given its input (a LoRA adapter, attached by models/lora.ts). Its own
 * parameters live in the projection's module tree, so they are named under it (`c_attn.lora_A.weight`).
 */
export interface OutputAdapter {
  forward(x: Tensor, y: Tensor): Tensor;
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  adapter: OutputAdapter | null = null;
  constructor(inFeatures: number, outFeatures: number, rng: Rng, opts: { bias?: boolean; std?: number } = {}) {
    super();
    this.weight = this.registerParameter('weight', randn([outFeatures, inFeatures], rng, opts.std ?? 0.02));
    this.bias = opts.bias === false ? null : this.registerParameter('bias', zeros([outFeatures]));
  }
  forward(x: Tensor): Tensor {
    const y = linear(x, this.weight, this.bias, { transB: true });
    return this.adapter ? this.adapter.forward(x, y) : y;
  }
}

/** GPT-2's projection: y = x·W + b with W stored [in, out]. */
export class Conv1D extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  adapter: OutputAdapter | null = null;
  constructor(inFeatures: number, outFeatures: number, rng: Rng, std = 0.02) {
    super();
    this.weight = this.registerParameter('weight', randn([inFeatures, outFeatures], rng, std));
    this.bias = this.registerParameter('bias', zeros([outFeatures]));
  }
  forward(x: Tensor): Tensor {
    const y = linear(x, this.weight, this.bias);
    return this.adapter ? this.adapter.forward(x, y) : y;
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(count: number, dim: number, rng: Rng, std = 0.02) {
    super();
    this.weight = this.registerParameter('weight', randn([count, dim], rng, std));
  }
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.registerParameter('weight', full([dim], 1));
    this.bias = this.registerParameter('bias', zeros([dim]));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(
    dim: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = this.registerParameter('weight', full([dim], 1));
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

/** Dropout whose masks come from a seeded generator shared by the model, so runs repeat and resume exactly. */
export class Dropout extends Module {
  constructor(
    readonly p: number,
    private readonly rng: Rng,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    return dropout(x, this.p, this.rng.nextU32(), true);
  }
}
