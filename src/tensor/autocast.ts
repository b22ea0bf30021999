// Mixed precision: inside autocast('bf16', fn) matrix products (matmul, linear, and attention's q·kᵀ and p·v with
// their gradients) read bf16 copies of their f32 inputs and accumulate in f32; everything else (softmax, norms,
// losses, and the master weights) stays f32.
let computeDType: 'f32' | 'bf16' = 'f32';

export function autocast<T>(dtype: 'f32' | 'bf16', fn: () => T): T {
  const prev = computeDType;
  computeDType = dtype;
  try {
    return fn();
  } finally {
    computeDType = prev;
  }
}

export function matmulDType(): 'f32' | 'bf16' {
  return computeDType;
}
