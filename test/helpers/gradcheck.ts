// Central finite differences against autograd. The loss is Σ out·w with fixed random weights w, summed in float64,
// so every output element's gradient path is exercised.
import assert from 'node:assert/strict';
import { backward, Rng, randn, type Tensor, tidy } from '../../src/tensor/index.js';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Check only these inputs (indices); default all with requiresGrad. */
  only?: number[];
  seed?: number;
}

function weightedSum(out: Tensor, w: Float64Array): number {
  const d = out.f32;
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i] * w[i];
  return s;
}

/** Asserts that autograd's gradients of fn(inputs) match finite differences for every input element. */
export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): void {
  const eps = opts.eps ?? 1e-2;
  const atol = opts.atol ?? 2e-3;
  const rtol = opts.rtol ?? 2e-2;
  const rng = new Rng(opts.seed ?? 7);
  tidy(() => {
    for (const x of inputs) x.grad = null;
    const out = fn(...inputs);
    const w = new Float64Array(out.numel).map(() => rng.normal());
    const wt = randn(out.shape, new Rng(0));
    wt.f32.set(Array.from(w, (v) => Math.fround(v)));
    // loss = Σ out·w through autograd: backward with w as the output gradient
    backward(out, wt);
    const which = opts.only ?? inputs.map((_, i) => i).filter((i) => inputs[i].requiresGrad);
    for (const i of which) {
      const x = inputs[i];
      assert.ok(x.grad, `input ${i} got no gradient`);
      const analytic = x.grad.f32;
      const data = x.f32;
      for (let j = 0; j < data.length; j++) {
        const orig = data[j];
        data[j] = orig + eps;
        const up = tidy(() => weightedSum(fn(...inputs), w));
        data[j] = orig - eps;
        const down = tidy(() => weightedSum(fn(...inputs), w));
        data[j] = orig;
        const numeric = (up - down) / (2 * eps);
        const err = Math.abs(numeric - analytic[j]);
        assert.ok(
          err <= atol + rtol * Math.abs(numeric),
          `input ${i} element ${j}: autograd ${analytic[j]} vs finite difference ${numeric}`,
        );
      }
    }
  });
}

/** ‖a − b‖ / ‖b‖: how far a low-precision result is from its reference, as one number. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}
