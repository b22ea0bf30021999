import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  attention,
  attentionPacked,
  autocast,
  backward,
  detach,
  getThreads,
  mul,
  permute,
  Rng,
  randn,
  setThreads,
  sum,
  type Tensor,
  tensor,
  writeKV,
  zeros,
} from '../src/tensor/index.js';
import { gradcheck, relativeError } from './helpers/gradcheck.js';

function rnd(shape: number[], seed: number, requiresGrad = false): Tensor {
  const t = randn(shape, new Rng(seed));
  t.requiresGrad = requiresGrad;
  return t;
}

/** f32 (B, Tk) mask: batch b has its first left[b] and its last right[b] keys padded. */
function paddingMask(Tk: number, left: number[], right: number[]): Tensor {
  const m: number[] = [];
  for (let b = 0; b < left.length; b++) for (let j = 0; j < Tk; j++) m.push(j < left[b] || j >= Tk - right[b] ? 0 : 1);
  return tensor(m, [left.length, Tk]);
}

interface RefOptions {
  causal: boolean;
  scale?: number;
  kvLen?: number;
  mask?: Tensor | null;
}

// Plain float64 attention: explicit scores, masks, softmax and weighted sum of values.
function reference(q: Tensor, k: Tensor, v: Tensor, o: RefOptions): Float64Array {
  const [B, Tq, Hq, hd] = q.shape;
  const [, Tk, Hkv] = k.shape;
  const kvLen = o.kvLen ?? Tk;
  const scale = o.scale ?? 1 / Math.sqrt(hd);
  const mask = o.mask?.f32 ?? null;
  const [qd, kd, vd] = [q.f32, k.f32, v.f32];
  const out = new Float64Array(B * Tq * Hq * hd);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / (Hq / Hkv));
      for (let i = 0; i < Tq; i++) {
        const qOff = ((b * Tq + i) * Hq + h) * hd;
        const scores: [number, number][] = [];
        for (let j = 0; j < kvLen; j++) {
          if (o.causal && j > kvLen - Tq + i) continue;
          if (mask && mask[b * Tk + j] === 0) continue;
          const kOff = ((b * Tk + j) * Hkv + kh) * hd;
          let s = 0;
          for (let d = 0; d < hd; d++) s += qd[qOff + d] * kd[kOff + d];
          scores.push([j, s * scale]);
        }
        if (scores.length === 0) continue; // no visible key: zeros
        const mx = Math.max(...scores.map(([, s]) => s));
        let sum = 0;
        for (const e of scores) sum += e[1] = Math.exp(e[1] - mx);
        for (const [j, p] of scores) {
          const vOff = ((b * Tk + j) * Hkv + kh) * hd;
          for (let d = 0; d < hd; d++) out[qOff + d] += (p / sum) * vd[vOff + d];
        }
      }
    }
  return out;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 2e-5, what = 'value'): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Number.isFinite(actual[i]), `${what} ${i} is ${actual[i]}`);
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(err <= tol * (1 + Math.abs(expected[i])), `${what} ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

// Time steps [t0, t1) of a (B, T, H, hd) tensor, copied.
function timeSlice(x: Tensor, t0: number, t1: number): Tensor {
  const [B, T, H, hd] = x.shape;
  const row = H * hd;
  const out = zeros([B, t1 - t0, H, hd]);
  for (let b = 0; b < B; b++) out.f32.set(x.f32.subarray((b * T + t0) * row, (b * T + t1) * row), b * (t1 - t0) * row);
  return out;
}

interface Case {
  name: string;
  B: number;
  Tq: number;
  Tk: number;
  Hq: number;
  Hkv: number;
  hd: number;
  causal: boolean;
  kvLen?: number;
  scale?: number;
}

// Short query runs (Tq·Hq/Hkv < 16) take the one-row kernel, longer ones the blocked kernel (32 queries × 64 keys).
const cases: Case[] = [
  { name: 'causal, short', B: 2, Tq: 5, Tk: 5, Hq: 2, Hkv: 2, hd: 8, causal: true },
  { name: 'non-causal, short', B: 2, Tq: 5, Tk: 5, Hq: 2, Hkv: 2, hd: 8, causal: false },
  { name: 'causal, across blocks', B: 2, Tq: 70, Tk: 70, Hq: 2, Hkv: 2, hd: 16, causal: true },
  { name: 'non-causal, across blocks, padded head dim', B: 2, Tq: 70, Tk: 70, Hq: 2, Hkv: 2, hd: 12, causal: false },
  { name: 'causal, Tq < Tk', B: 2, Tq: 20, Tk: 75, Hq: 2, Hkv: 2, hd: 16, causal: true },
  { name: 'causal, Tq < Tk, short', B: 2, Tq: 3, Tk: 9, Hq: 2, Hkv: 2, hd: 8, causal: true },
  { name: 'non-causal, Tq < Tk', B: 1, Tq: 20, Tk: 75, Hq: 2, Hkv: 2, hd: 16, causal: false },
  { name: 'GQA, causal', B: 2, Tq: 40, Tk: 40, Hq: 4, Hkv: 2, hd: 16, causal: true },
  { name: 'GQA, short', B: 2, Tq: 3, Tk: 3, Hq: 4, Hkv: 2, hd: 8, causal: true },
  { name: 'head dim 64', B: 1, Tq: 33, Tk: 33, Hq: 2, Hkv: 1, hd: 64, causal: true },
  { name: 'head dim 80', B: 1, Tq: 33, Tk: 33, Hq: 1, Hkv: 1, hd: 80, causal: true },
  { name: 'head dim 200', B: 1, Tq: 17, Tk: 17, Hq: 1, Hkv: 1, hd: 200, causal: false },
  { name: 'large scale', B: 1, Tq: 40, Tk: 40, Hq: 2, Hkv: 2, hd: 16, causal: true, scale: 3 },
  { name: 'kvLen < Tk, causal', B: 2, Tq: 50, Tk: 80, Hq: 2, Hkv: 2, hd: 16, causal: true, kvLen: 50 },
  { name: 'kvLen < Tk, non-causal', B: 2, Tq: 20, Tk: 80, Hq: 2, Hkv: 1, hd: 16, causal: false, kvLen: 45 },
  { name: 'decode step, long cache', B: 2, Tq: 1, Tk: 300, Hq: 2, Hkv: 2, hd: 64, causal: true, kvLen: 257 },
];

for (const c of cases)
  test(`attention forward matches a float64 reference: ${c.name}`, () => {
    const q = rnd([c.B, c.Tq, c.Hq, c.hd], 1);
    const k = rnd([c.B, c.Tk, c.Hkv, c.hd], 2);
    const v = rnd([c.B, c.Tk, c.Hkv, c.hd], 3);
    // Keys past kvLen must not be read: poison them.
    const kvLen = c.kvLen ?? c.Tk;
    for (let b = 0; b < c.B; b++) {
      const row = c.Hkv * c.hd;
      k.f32.fill(Number.NaN, (b * c.Tk + kvLen) * row, (b + 1) * c.Tk * row);
      v.f32.fill(Number.NaN, (b * c.Tk + kvLen) * row, (b + 1) * c.Tk * row);
    }
    const opts = { causal: c.causal, kvLen: c.kvLen, scale: c.scale };
    assertClose(attention(q, k, v, opts).f32, reference(q, k, v, opts));
  });

test('causal is the default', () => {
  const [q, k, v] = [rnd([1, 6, 2, 8], 4), rnd([1, 6, 2, 8], 5), rnd([1, 6, 2, 8], 6)];
  assertClose(attention(q, k, v).f32, reference(q, k, v, { causal: true }));
});

for (const T of [6, 20, 140])
  test(`keyMask with left and right padding and fully masked rows, T=${T}`, () => {
    const [B, H, hd] = [3, 2, 8];
    const q = rnd([B, T, H, hd], 7);
    const k = rnd([B, T, H, hd], 8);
    const v = rnd([B, T, H, hd], 9);
    // batch 0: right padding; batch 1: left padding (its first causal rows see only padding); batch 2: all padding
    const mask = paddingMask(T, [0, Math.floor(T / 2), T], [3, 0, 0]);
    for (const causal of [true, false]) {
      const out = attention(q, k, v, { causal, keyMask: mask }).f32;
      assertClose(out, reference(q, k, v, { causal, mask }));
      const batch2 = out.subarray(2 * T * H * hd);
      assert.ok(
        batch2.every((x) => x === 0),
        'a row with no visible key outputs zeros',
      );
    }
  });

test('attentionPacked equals attention on the split q, k, v', () => {
  const [B, T, nHead, hd] = [2, 37, 3, 8];
  const D = nHead * hd;
  const qkv = rnd([B, T, 3 * D], 10);
  const parts = [0, 1, 2].map((p) => {
    const t = zeros([B, T, nHead, hd]);
    for (let r = 0; r < B * T; r++) t.f32.set(qkv.f32.subarray(r * 3 * D + p * D, r * 3 * D + (p + 1) * D), r * D);
    return t;
  });
  const mask = paddingMask(T, [0, 4], [2, 0]);
  for (const causal of [true, false]) {
    const packed = attentionPacked(qkv, nHead, { causal, keyMask: mask });
    assert.deepEqual(packed.shape, [B, T, D]);
    assertClose(packed.f32, attention(parts[0], parts[1], parts[2], { causal, keyMask: mask }).f32, 1e-6);
    assertClose(packed.f32, reference(parts[0], parts[1], parts[2], { causal, mask }));
  }
});

test('attention gradients: causal, GQA, padding mask (blocked forward)', () => {
  const [B, T, Hq, Hkv, hd] = [2, 18, 4, 2, 8];
  const mask = paddingMask(T, [0, 3], [2, 0]);
  const inputs = [rnd([B, T, Hq, hd], 11, true), rnd([B, T, Hkv, hd], 12, true), rnd([B, T, Hkv, hd], 13, true)];
  gradcheck((q, k, v) => attention(q, k, v, { keyMask: mask }), inputs);
});

test('attention gradients: non-causal, GQA (row forward)', () => {
  const inputs = [rnd([2, 5, 2, 8], 14, true), rnd([2, 5, 1, 8], 15, true), rnd([2, 5, 1, 8], 16, true)];
  gradcheck((q, k, v) => attention(q, k, v, { causal: false }), inputs);
});

test('attention gradients: several query and key blocks', () => {
  const inputs = [rnd([1, 70, 1, 4], 17, true), rnd([1, 70, 1, 4], 18, true), rnd([1, 70, 1, 4], 19, true)];
  gradcheck((q, k, v) => attention(q, k, v), inputs);
});

test('attention gradients: Tq < Tk with kvLen, keys past kvLen get zero gradient', () => {
  const inputs = [rnd([2, 4, 2, 8], 20, true), rnd([2, 9, 2, 8], 21, true), rnd([2, 9, 2, 8], 22, true)];
  gradcheck((q, k, v) => attention(q, k, v, { kvLen: 7 }), inputs);
  const kGrad = inputs[1].grad!.f32;
  for (let b = 0; b < 2; b++) assert.ok(kGrad.subarray((b * 9 + 7) * 16, (b + 1) * 9 * 16).every((x) => x === 0));
});

test('attention gradients for a subset of inputs', () => {
  const q = rnd([1, 20, 2, 8], 23, true);
  const k = rnd([1, 20, 2, 8], 24);
  const v = rnd([1, 20, 2, 8], 25, true);
  gradcheck((a, b, c) => attention(a, b, c), [q, k, v]);
  q.requiresGrad = false;
  gradcheck((a, b, c) => attention(a, b, c), [q, k, v]);
});

test('head-major keys and values give the same output and gradients as token-major ones', () => {
  const [q, k, v] = [rnd([2, 6, 4, 8], 45, true), rnd([2, 6, 2, 8], 46, true), rnd([2, 6, 2, 8], 47, true)];
  const mask = paddingMask(6, [0, 2], [0, 0]);
  const headMajor = (x: Tensor) => {
    const h = detach(permute(x, [0, 2, 1, 3]));
    h.requiresGrad = true;
    return h;
  };
  const want = attention(q, k, v, { keyMask: mask });
  const got = attention(q, headMajor(k), headMajor(v), { keyMask: mask, headMajorKV: true });
  assertClose(got.f32, want.f32, 1e-6, 'output');
  gradcheck((x, y, z) => attention(x, y, z, { keyMask: mask, headMajorKV: true }), [q, headMajor(k), headMajor(v)]);
});

// Under bf16 autocast the products round their operands to bf16 (8 significant bits, a relative step of 2^-8):
// outputs and gradients land within about a percent of f32, where an error in the pairing of bf16 values would be
// of the order of the values themselves.
const bf16Cases: Case[] = [
  {
    name: 'GQA, odd head dim and query count, several blocks',
    B: 2,
    Tq: 71,
    Tk: 71,
    Hq: 4,
    Hkv: 2,
    hd: 5,
    causal: true,
  },
  { name: 'head dim 64, Tq < Tk with kvLen', B: 1, Tq: 40, Tk: 90, Hq: 2, Hkv: 2, hd: 64, causal: true, kvLen: 83 },
  { name: 'non-causal, head dim 24', B: 2, Tq: 33, Tk: 33, Hq: 2, Hkv: 1, hd: 24, causal: false },
];
for (const c of bf16Cases)
  test(`bf16 autocast attention stays within bf16 rounding of f32: ${c.name}`, () => {
    const q = rnd([c.B, c.Tq, c.Hq, c.hd], 61, true);
    const k = rnd([c.B, c.Tk, c.Hkv, c.hd], 62, true);
    const v = rnd([c.B, c.Tk, c.Hkv, c.hd], 63, true);
    const up = rnd([c.B, c.Tq, c.Hq, c.hd], 64);
    const mask = paddingMask(c.Tk, [0, 3].slice(0, c.B), [2, 0].slice(0, c.B));
    const opts = { causal: c.causal, kvLen: c.kvLen, keyMask: mask };
    const run = (dtype: 'f32' | 'bf16') => {
      for (const x of [q, k, v]) x.grad = null;
      // The backward runs outside autocast: it keeps the precision its forward had.
      const out = autocast(dtype, () => attention(q, k, v, opts));
      backward(sum(mul(out, up)));
      return { out: out.toArray(), grads: [q, k, v].map((x) => x.grad!.toArray()) };
    };
    const want = reference(q, k, v, { ...opts, mask });
    const f32 = run('f32');
    const low = run('bf16');
    assert.ok(relativeError(f32.out, want) < 1e-6, 'f32 output');
    const outErr = relativeError(low.out, want);
    assert.ok(outErr < 1.5e-2, `bf16 output error ${outErr}`);
    for (const [i, name] of ['dq', 'dk', 'dv'].entries()) {
      const err = relativeError(low.grads[i], f32.grads[i]);
      assert.ok(err < 3e-2, `bf16 ${name} error ${err}`);
    }
  });

test('attentionPacked gradients', () => {
  const mask = paddingMask(20, [0, 5], [0, 0]);
  gradcheck((x) => attentionPacked(x, 2, { keyMask: mask }), [rnd([2, 20, 3 * 8], 26, true)]);
  gradcheck((x) => attentionPacked(x, 2, { causal: false }), [rnd([1, 6, 3 * 8], 27, true)]);
});

test('decode with a head-major KV cache reproduces full-sequence attention', () => {
  const [B, T, Hq, Hkv, hd, Tmax, prefill] = [2, 12, 4, 2, 16, 16, 5];
  const q = rnd([B, T, Hq, hd], 28);
  const k = rnd([B, T, Hkv, hd], 29);
  const v = rnd([B, T, Hkv, hd], 30);
  const full = attention(q, k, v, { keyMask: paddingMask(T, [0, 2], [0, 0]) }).f32;
  const cacheMask = paddingMask(Tmax, [0, 2], [0, 0]);
  const kc = zeros([B, Hkv, Tmax, hd]);
  const vc = zeros([B, Hkv, Tmax, hd]);
  kc.f32.fill(Number.NaN); // never-written slots must not be read
  vc.f32.fill(Number.NaN);
  const row = Hq * hd;
  const check = (step: Float32Array, t0: number, t1: number) => {
    for (let b = 0; b < B; b++)
      assertClose(
        step.subarray(b * (t1 - t0) * row, (b + 1) * (t1 - t0) * row),
        full.subarray((b * T + t0) * row, (b * T + t1) * row),
        1e-5,
        `batch ${b} steps ${t0}..${t1}`,
      );
  };
  // Prefill several positions at once, then one token per step.
  writeKV(kc, timeSlice(k, 0, prefill), 0);
  writeKV(vc, timeSlice(v, 0, prefill), 0);
  check(
    attention(timeSlice(q, 0, prefill), kc, vc, { kvLen: prefill, keyMask: cacheMask, headMajorKV: true }).f32,
    0,
    prefill,
  );
  for (let t = prefill; t < T; t++) {
    writeKV(kc, timeSlice(k, t, t + 1), t);
    writeKV(vc, timeSlice(v, t, t + 1), t);
    check(
      attention(timeSlice(q, t, t + 1), kc, vc, { kvLen: t + 1, keyMask: cacheMask, headMajorKV: true }).f32,
      t,
      t + 1,
    );
  }
});

test('results do not depend on the thread count', () => {
  const run = () => {
    const q = rnd([2, 45, 4, 16], 31, true);
    const k = rnd([2, 45, 2, 16], 32, true);
    const v = rnd([2, 45, 2, 16], 33, true);
    const out = attention(q, k, v);
    backward(out, rnd(out.shape as number[], 34));
    return [out, q.grad!, k.grad!, v.grad!].map((t) => t.toArray());
  };
  const threads = getThreads();
  try {
    setThreads(1);
    const one = run();
    setThreads(2);
    assert.deepEqual(run(), one);
  } finally {
    setThreads(threads);
  }
});

test('no keys in use, or no queries, give zeros and zero gradients', () => {
  const q = rnd([2, 3, 2, 8], 45, true);
  const k = rnd([2, 4, 2, 8], 46, true);
  const v = rnd([2, 4, 2, 8], 47, true);
  const out = attention(q, k, v, { causal: false, kvLen: 0 });
  assert.ok(out.f32.every((x) => x === 0));
  backward(out, rnd([2, 3, 2, 8], 48));
  for (const t of [q, k, v]) assert.ok(t.grad!.f32.every((x) => x === 0));
  const none = attention(rnd([2, 0, 2, 8], 49), k, v);
  assert.deepEqual(none.shape, [2, 0, 2, 8]);
});

test('attention names the op on bad input', () => {
  const q = rnd([1, 4, 2, 8], 35);
  const k = rnd([1, 4, 2, 8], 36);
  assert.throws(() => attention(rnd([1, 4, 3, 8], 37), k, k), /attention: query heads must be a multiple of kv heads/);
  assert.throws(() => attention(q, rnd([1, 4, 2, 4], 38), rnd([1, 4, 2, 4], 39)), /attention: head dims differ/);
  assert.throws(() => attention(q, k, rnd([1, 5, 2, 8], 40)), /attention: k \[1, 4, 2, 8\] and v/);
  assert.throws(() => attention(q, k, k, { keyMask: zeros([1, 5]) }), /attention: keyMask must be f32 \[1, 4\]/);
  assert.throws(() => attention(q, k, k, { kvLen: 3 }), /attention: causal queries/);
  assert.throws(() => attention(q, k, k, { kvLen: 5, causal: false }), /attention: kvLen 5/);
  assert.throws(() => attention(rnd([1, 4, 8], 41), k, k), /attention: q, k, v must be/);
  assert.throws(() => attentionPacked(rnd([1, 4, 20], 42), 2), /attentionPacked: last axis/);
  assert.throws(() => writeKV(zeros([1, 2, 4, 8]), rnd([1, 2, 2, 8], 43), 3), /writeKV: .*overruns/);
  assert.throws(() => writeKV(zeros([1, 2, 4, 8]), rnd([1, 2, 1, 8], 44), 0), /writeKV: x \[1, 2, 1, 8\] does not fit/);
});
