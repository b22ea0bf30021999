// A moving average of a module's trainable weights (InstructGPT evaluates PPO's policy this way, decay 0.992),
// kept beside the weights, updated after each optimizer step and checkpointed as a tensor group of its own.
import type { Module } from '../nn/index.js';
import { keep, native, Tensor } from '../tensor/index.js';

export class WeightAverage {
  /** The averages by parameter name. */
  readonly tensors = new Map<string, Tensor>();

  constructor(private readonly module: Module) {
    for (const [name, p] of module.namedTrainableParameters()) {
      const copy = keep(Tensor.empty(p.shape));
      copy.f32.set(p.f32);
      this.tensors.set(name, copy);
    }
  }

  /** avg ← decay·avg + (1 − decay)·weights. */
  update(decay: number): void {
    for (const [name, p] of this.module.namedTrainableParameters()) {
      const e = this.tensors.get(name)!;
      native.scaleInPlace(e.f32, decay);
      native.addInPlace(e.f32, p.f32, 1 - decay);
    }
  }

  /** Takes the averages of a checkpoint; a tensor that does not fit the module is an error naming it. */
  load(saved: Map<string, Tensor>): void {
    for (const [name, t] of saved) {
      const own = this.tensors.get(name);
      if (!own || own.numel !== t.numel) throw new Error(`checkpoint EMA tensor "${name}" does not fit the policy`);
      own.f32.set(t.f32);
    }
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
  }
}
