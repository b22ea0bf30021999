// Tensor constructors.
import type { Rng } from './random.js';
import { check, type DType, numelOf, type Shape, shapeStr, Tensor } from './tensor.js';

export function full(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  check(dtype !== 'bf16', 'full', () => 'make an f32 tensor and cast it to bf16');
  const t = Tensor.empty(shape, dtype);
  (t.buffer as Float32Array | Int32Array).fill(value);
  return t;
}
export const zeros = (shape: Shape, dtype: DType = 'f32'): Tensor => full(shape, 0, dtype);
export const ones = (shape: Shape, dtype: DType = 'f32'): Tensor => full(shape, 1, dtype);

/** A tensor from flat values and a shape (the shape defaults to 1-d). */
export function tensor(values: ArrayLike<number>, shape: Shape = [values.length], dtype: DType = 'f32'): Tensor {
  check(
    numelOf(shape) === values.length,
    'tensor',
    () => `${values.length} values cannot fill shape ${shapeStr(shape)}`,
  );
  check(dtype !== 'bf16', 'tensor', () => 'make an f32 tensor and cast it to bf16');
  const t = Tensor.empty(shape, dtype);
  (t.buffer as Float32Array | Int32Array).set(values);
  return t;
}

/** Normal(mean, std) values from a seeded generator. */
export function randn(shape: Shape, rng: Rng, std = 1, mean = 0): Tensor {
  const t = Tensor.empty(shape);
  const d = t.f32;
  for (let i = 0; i < d.length; i++) d[i] = mean + std * rng.normal();
  return t;
}

/** Uniform values in [lo, hi) from a seeded generator. */
export function rand(shape: Shape, rng: Rng, lo = 0, hi = 1): Tensor {
  const t = Tensor.empty(shape);
  const d = t.f32;
  for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * rng.next();
  return t;
}

/** 0, 1, ..., n-1 */
export function arange(n: number, dtype: DType = 'i32'): Tensor {
  const t = Tensor.empty([n], dtype);
  const d = t.buffer as Float32Array | Int32Array;
  for (let i = 0; i < n; i++) d[i] = i;
  return t;
}
