import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng, randn, rope, type Tensor, tensor } from '../src/tensor/index.js';
import { gradcheck } from './helpers/gradcheck.js';

const ints = (values: number[], shape: number[] = [values.length]) => tensor(values, shape, 'i32');

/**
 * Hugging Face Llama, written out: inv_freq[i] = theta^(−2i/rd), emb = cat(pos·inv_freq, pos·inv_freq),
 * q_embed = q·cos(emb) + rotate_half(q)·sin(emb) with rotate_half(q) = cat(−q[rd/2:], q[:rd/2]); dims ≥ rd pass.
 * Like Hugging Face, inv_freq and the angles are f32 values (so large positions agree closely).
 */
function refRope(x: Tensor, positions: Tensor, theta: number, rd: number): number[] {
  const [B, T, H, hd] = x.shape;
  const xv = x.f32;
  const pos = positions.i32;
  const out = new Array<number>(x.numel);
  const half = rd / 2;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const p = positions.ndim === 2 ? pos[b * T + t] : pos[t];
      const emb = Array.from({ length: rd }, (_, k) => Math.fround(p * Math.fround(theta ** (-(2 * (k % half)) / rd))));
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * hd;
        const q = Array.from(xv.subarray(base, base + hd));
        const rotated = [...q.slice(half, rd).map((v) => -v), ...q.slice(0, half)];
        for (let k = 0; k < hd; k++)
          out[base + k] = k < rd ? q[k] * Math.cos(emb[k]) + rotated[k] * Math.sin(emb[k]) : q[k];
      }
    }
  return out;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++)
    assert.ok(Math.abs(actual[i] - expected[i]) <= atol, `element ${i}: ${actual[i]} vs ${expected[i]}`);
}

test('rope matches the Hugging Face rotate_half formula', () => {
  const x = randn([2, 5, 3, 8], new Rng(1));
  const positions = ints([0, 1, 2, 3, 40]);
  assertClose(rope(x, positions).toArray(), refRope(x, positions, 10000, 8), 1e-5);
  assertClose(rope(x, positions, { theta: 500 }).toArray(), refRope(x, positions, 500, 8), 1e-5);
  const far = ints([7, 900, 4000, 3, 12345]); // past the positions seen so far
  assertClose(rope(x, far).toArray(), refRope(x, far, 10000, 8), 1e-5);
});

test('rope with per-batch positions and a partial rotary dim', () => {
  const x = randn([2, 3, 2, 10], new Rng(2));
  const positions = ints([5, 6, 7, 0, 100, -3], [2, 3]); // negative positions rotate backwards
  const y = rope(x, positions, { rotaryDim: 4 });
  assertClose(y.toArray(), refRope(x, positions, 10000, 4), 1e-5);
  const yv = y.f32;
  const xv = x.f32;
  for (let i = 0; i < x.numel; i++) if (i % 10 >= 4) assert.equal(yv[i], xv[i]); // pass-through dims untouched
});

test('rope at position 0 is the identity', () => {
  const x = randn([1, 2, 2, 6], new Rng(3));
  assert.deepEqual(rope(x, ints([0, 0])).toArray(), x.toArray());
});

test('rope gradients are the inverse rotation', () => {
  const x = randn([2, 3, 2, 6], new Rng(4));
  x.requiresGrad = true;
  gradcheck((a) => rope(a, ints([3, 1, 7])), [x]);
  gradcheck((a) => rope(a, ints([3, 1, 7, 2, 9, 4], [2, 3]), { rotaryDim: 4, theta: 100 }), [x]);
});

test('rope rejects bad shapes and rotary dims, naming the op', () => {
  const x = randn([1, 3, 2, 6], new Rng(5));
  assert.throws(() => rope(x, ints([0, 1])), /rope: positions \[2\] must be \[3\] or \[1, 3\]/);
  assert.throws(() => rope(x, ints([0, 1, 2]), { rotaryDim: 3 }), /rope: rotaryDim 3 must be even/);
  assert.throws(() => rope(x, ints([0, 1, 2]), { rotaryDim: 8 }), /rope: rotaryDim 8 must be even/);
  assert.throws(() => rope(randn([3, 2, 6], new Rng(0)), ints([0, 1])), /rope: input \[3, 2, 6\] must be/);
  assert.throws(() => rope(x, tensor([0, 1, 2])), /rope: positions must be i32/);
});
