// Parameters are plain tensors marked to need a gradient and to outlive every tidy scope.
import { check, keep, type Tensor } from '../tensor/tensor.js';

/** Marks t as a trainable parameter (requiresGrad, kept) and returns it. */
export function parameter(t: Tensor, name?: string): Tensor {
  check(t.dtype === 'f32', 'parameter', () => `parameters are f32, got ${t.dtype}`);
  check(t.gradFn === null, 'parameter', () => `a parameter must be a leaf, not the output of op ${t.gradFn!.op}`);
  t.requiresGrad = true;
  if (name !== undefined) t.name = name;
  return keep(t);
}
