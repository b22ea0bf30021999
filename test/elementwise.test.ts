import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  abs,
  add,
  backward,
  clamp,
  div,
  eq,
  exp,
  ge,
  gelu,
  gt,
  le,
  log,
  lt,
  maskedFill,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  type Operand,
  ones,
  pow,
  Rng,
  randn,
  relu,
  scale,
  sigmoid,
  silu,
  sqrt,
  sub,
  type Tensor,
  tanh,
  tensor,
  where,
} from '../src/tensor/index.js';
import { gradcheck } from './helpers/gradcheck.js';

function param(shape: number[], seed: number, lo?: number, hi?: number): Tensor {
  const t = randn(shape, new Rng(seed));
  if (lo !== undefined && hi !== undefined) {
    const d = t.f32;
    const rng = new Rng(seed + 1000);
    for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * rng.next();
  }
  t.requiresGrad = true;
  return t;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-6, atol = 1e-7): void {
  assert.equal(actual.length, expected.length, 'lengths differ');
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e)) assert.ok(Number.isNaN(a), `element ${i}: ${a}, expected NaN`);
    else if (!Number.isFinite(e)) assert.equal(a, e, `element ${i}`);
    else assert.ok(Math.abs(a - e) <= atol + rtol * Math.abs(e), `element ${i}: ${a}, expected ${e}`);
  }
}

// Plain float64 NumPy broadcasting: the reference every broadcasting forward is checked against.
function refBroadcast(shapes: number[][], values: number[][], f: (...v: number[]) => number) {
  const rank = Math.max(...shapes.map((s) => s.length));
  const outShape: number[] = [];
  for (let k = 0; k < rank; k++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + k] ?? 1;
      if (v !== 1) d = v;
    }
    outShape.push(d);
  }
  const n = outShape.reduce((p, q) => p * q, 1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const idx: number[] = [];
    let rem = i;
    for (let k = rank - 1; k >= 0; k--) {
      idx[k] = rem % outShape[k];
      rem = Math.floor(rem / outShape[k]);
    }
    const args = shapes.map((s, j) => {
      let off = 0;
      for (let k = 0; k < s.length; k++) {
        const size = s[k];
        off = off * size + (size === 1 ? 0 : idx[rank - s.length + k]);
      }
      return values[j][off];
    });
    out.push(f(...args));
  }
  return { shape: outShape, values: out };
}

const shapePairs: [number[], number[]][] = [
  [
    [2, 3],
    [2, 3],
  ],
  [[2, 3, 4], [4]],
  [
    [2, 3, 4],
    [2, 3, 1],
  ],
  [
    [2, 1, 4],
    [3, 1],
  ],
  [[3], [2, 1]],
  [[2, 3], []],
  [[1], [2, 2]],
];

const arith: [string, (a: Tensor, b: Operand) => Tensor, (x: number, y: number) => number][] = [
  ['add', add, (x, y) => x + y],
  ['sub', sub, (x, y) => x - y],
  ['mul', mul, (x, y) => x * y],
  ['div', div, (x, y) => x / y],
  ['maximum', maximum, (x, y) => Math.max(x, y)],
  ['minimum', minimum, (x, y) => Math.min(x, y)],
];

for (const [name, op, ref] of arith) {
  test(`${name} forward with broadcasting matches float64`, () => {
    for (const [sa, sb] of shapePairs) {
      const a = randn(sa, new Rng(1));
      const b = randn(sb, new Rng(2));
      const expected = refBroadcast([sa, sb], [a.toArray(), b.toArray()], ref);
      const out = op(a, b);
      assert.deepEqual(out.shape, expected.shape);
      assertClose(out.toArray(), expected.values);
    }
    const a = randn([3, 4], new Rng(3));
    assertClose(
      op(a, 1.5).toArray(),
      a.toArray().map((v) => ref(v, 1.5)),
    );
  });

  for (const [sa, sb] of shapePairs) {
    test(`${name} gradients, ${JSON.stringify(sa)} with ${JSON.stringify(sb)}`, () => {
      // Operands kept apart (no ties for maximum/minimum, no division near 0).
      const a = param(sa, 11, 0.5, 2);
      const b = param(sb, 12, 2.5, 4);
      gradcheck((x, y) => op(x, y), [a, b]);
    });
  }

  test(`${name} gradients with a number operand`, () => {
    gradcheck((x) => op(x, 3.5), [param([2, 3], 13, 0.5, 2)]);
  });
}

test('gradients reach only the operands that need them', () => {
  const a = param([2, 3], 1);
  const b = randn([3], new Rng(2));
  gradcheck((x, y) => mul(x, y), [a, b]);
  assert.equal(b.grad, null);
});

test('the same tensor on both sides gets both gradients', () => {
  gradcheck((x) => mul(x, x), [param([4], 3)]);
  gradcheck((x) => sub(x, x), [param([4], 4)]);
});

test('a large row broadcast (parallel path) matches float64', () => {
  const a = randn([64, 300], new Rng(5));
  const b = randn([300], new Rng(6));
  const expected = refBroadcast([[64, 300], [300]], [a.toArray(), b.toArray()], (x, y) => x * y + 0);
  assertClose(mul(a, b).toArray(), expected.values);
  const c = randn([64, 1], new Rng(7));
  const colExpected = refBroadcast(
    [
      [64, 300],
      [64, 1],
    ],
    [a.toArray(), c.toArray()],
    (x, y) => x - y,
  );
  assertClose(sub(a, c).toArray(), colExpected.values);
});

test('maximum and minimum split the gradient on ties', () => {
  for (const [op, gradA, gradB] of [
    [maximum, [0.5, 0, 1], [0.5, 1, 0]],
    [minimum, [0.5, 1, 0], [0.5, 0, 1]],
  ] as const) {
    const a = tensor([1, 2, 3]);
    const b = tensor([1, 5, 0]);
    a.requiresGrad = true;
    b.requiresGrad = true;
    backward(op(a, b), ones([3]));
    assert.deepEqual(a.grad!.toArray(), gradA);
    assert.deepEqual(b.grad!.toArray(), gradB);
  }
});

const comparisons: [string, (a: Tensor, b: Operand) => Tensor, (x: number, y: number) => boolean][] = [
  ['eq', eq, (x, y) => x === y],
  ['ne', ne, (x, y) => x !== y],
  ['lt', lt, (x, y) => x < y],
  ['le', le, (x, y) => x <= y],
  ['gt', gt, (x, y) => x > y],
  ['ge', ge, (x, y) => x >= y],
];

for (const [name, op, ref] of comparisons) {
  test(`${name} gives an f32 0/1 mask with broadcasting`, () => {
    const av = [1, 2, 3, 4, 5, 6];
    const bv = [2, 5, 6];
    const a = tensor(av, [2, 3]);
    const b = tensor(bv, [3]);
    const out = op(a, b);
    assert.equal(out.dtype, 'f32');
    assert.equal(out.requiresGrad, false);
    const expected = refBroadcast([[2, 3], [3]], [av, bv], (x, y) => (ref(x, y) ? 1 : 0));
    assert.deepEqual(out.toArray(), expected.values);
    assert.deepEqual(
      op(a, 3).toArray(),
      av.map((x) => (ref(x, 3) ? 1 : 0)),
    );
    const ids = tensor([0, 7, 3, 3], [4], 'i32');
    assert.deepEqual(
      op(ids, 3).toArray(),
      [0, 7, 3, 3].map((x) => (ref(x, 3) ? 1 : 0)),
    );
  });
}

test('where picks by a broadcast mask and routes gradients', () => {
  const cv = [1, 0, 0, 1];
  const cond = tensor(cv, [4, 1]);
  const a = param([4, 3], 21);
  const b = param([3], 22);
  const expected = refBroadcast([[4, 1], [4, 3], [3]], [cv, a.toArray(), b.toArray()], (c, x, y) => (c ? x : y));
  const out = where(cond, a, b);
  assert.deepEqual(out.shape, [4, 3]);
  assertClose(out.toArray(), expected.values);
  gradcheck((x, y) => where(cond, x, y), [a, b]);
  gradcheck((x) => where(cond, x, -1), [param([2, 4, 3], 23)]);
  gradcheck((y) => where(cond, 0, y), [param([1, 3], 24)]);
  assert.deepEqual(where(tensor([1, 0]), 5, 7).toArray(), [5, 7]);
});

test('maskedFill writes the value where the mask is set', () => {
  const x = param([2, 3], 31);
  const mv = [0, 1, 1];
  const mask = tensor(mv, [3]);
  const xs = x.toArray();
  assert.deepEqual(
    maskedFill(x, mask, -Infinity).toArray(),
    xs.map((v, i) => (mv[i % 3] ? -Infinity : v)),
  );
  gradcheck((t) => maskedFill(t, mask, 2), [x]);
  assert.throws(() => maskedFill(tensor([1, 2]), tensor([1, 0, 1, 0], [2, 2]), 0), /maskedFill: mask \[2, 2\]/);
});

const erf = (x: number): number => {
  // Maclaurin series: converges everywhere and is accurate to ~1e-12 for |x| < 4 in float64.
  let term = x;
  let total = x;
  for (let n = 1; n < 120; n++) {
    term *= (-x * x) / n;
    total += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * total;
};
const sig = (v: number): number => 1 / (1 + Math.exp(-v));
const geluTanhRef = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

const unaries: [string, (x: Tensor) => Tensor, (v: number) => number, number, number][] = [
  ['neg', neg, (v) => -v, -5, 5],
  ['exp', exp, Math.exp, -20, 20],
  ['log', log, Math.log, 0.01, 50],
  ['sqrt', sqrt, Math.sqrt, 0.01, 50],
  ['tanh', tanh, Math.tanh, -6, 6],
  ['sigmoid', sigmoid, sig, -12, 12],
  ['relu', relu, (v) => Math.max(v, 0), -3, 3],
  ['silu', silu, (v) => v * sig(v), -8, 8],
  ['abs', abs, Math.abs, -3, 3],
  ['gelu tanh', (x) => gelu(x), geluTanhRef, -5, 5],
  ['gelu none', (x) => gelu(x, 'none'), (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)), -5, 5],
  ['pow 2', (x) => pow(x, 2), (v) => v * v, -3, 3],
  ['pow 3', (x) => pow(x, 3), (v) => v ** 3, -3, 3],
  ['pow 0.5', (x) => pow(x, 0.5), Math.sqrt, 0.1, 4],
  ['pow -0.5', (x) => pow(x, -0.5), (v) => v ** -0.5, 0.1, 4],
  ['pow -1', (x) => pow(x, -1), (v) => 1 / v, 0.5, 4],
  ['pow 1.7', (x) => pow(x, 1.7), (v) => v ** 1.7, 0.1, 4],
  ['clamp', (x) => clamp(x, -1, 0.5), (v) => Math.min(Math.max(v, -1), 0.5), -3, 3],
  ['clamp below only', (x) => clamp(x, 0.2, null), (v) => Math.max(v, 0.2), -3, 3],
  ['scale', (x) => scale(x, -2.5), (v) => -2.5 * v, -3, 3],
];

// Points that stay one finite-difference step away from a kink.
const kinks: Record<string, number[]> = {
  relu: [0],
  abs: [0],
  clamp: [-1, 0.5],
  'clamp below only': [0.2],
};

for (const [name, op, ref, lo, hi] of unaries) {
  test(`${name} forward matches float64 over [${lo}, ${hi}]`, () => {
    const n = 40000; // beyond one parallel chunk
    const values = Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
    const x = tensor(values);
    const xs = x.toArray();
    assertClose(op(x).toArray(), xs.map(ref), 4e-6, 1e-7);
  });

  test(`${name} gradients`, () => {
    const x = param([3, 5], 40, lo, hi);
    const d = x.f32;
    for (let i = 0; i < d.length; i++) for (const k of kinks[name] ?? []) if (Math.abs(d[i] - k) < 0.05) d[i] = k + 0.1;
    gradcheck(op, [x], { rtol: 3e-2 });
  });
}

test('transcendental ops keep special values', () => {
  assert.deepEqual(exp(tensor([Infinity, -Infinity, NaN, 89, -104, 0])).toArray(), [Infinity, 0, NaN, Infinity, 0, 1]);
  assert.deepEqual(log(tensor([0, -1, Infinity, NaN, 1])).toArray(), [-Infinity, NaN, Infinity, NaN, 0]);
  assertClose(log(tensor([1e-40, 1e-45])).toArray(), [Math.log(Math.fround(1e-40)), Math.log(Math.fround(1e-45))]);
  assert.deepEqual(tanh(tensor([Infinity, -Infinity, NaN, 0, 30])).toArray(), [1, -1, NaN, 0, 1]);
  assert.ok(Object.is(tanh(tensor([0])).toArray()[0], 0));
  assert.deepEqual(sigmoid(tensor([-Infinity, Infinity, -200, 200])).toArray(), [0, 1, 0, 1]);
  assertClose(tanh(tensor([1e-6, -3e-4])).toArray(), [Math.fround(1e-6), Math.tanh(Math.fround(-3e-4))]);
});

test('binary ops name the op and both shapes when they do not broadcast', () => {
  assert.throws(
    () => add(tensor([1, 2, 3, 4, 5, 6], [2, 3]), tensor([1, 2, 3, 4], [4])),
    /add: shapes \[2, 3\] and \[4\]/,
  );
  assert.throws(() => mul(tensor([1, 2], [2, 1]), tensor([1, 2, 3], [3, 1])), /mul: shapes \[2, 1\] and \[3, 1\]/);
  assert.throws(() => div(tensor([1, 2, 3]), tensor([1, 2, 3, 4], [2, 2])), /div: shapes \[3\] and \[2, 2\]/);
  assert.throws(() => where(tensor([1, 0]), tensor([1, 2, 3]), 0), /where: shapes \[2\] and \[3\]/);
  assert.throws(() => lt(tensor([1, 2]), tensor([1, 2, 3])), /lt: shapes/);
});

test('ops reject other dtypes and bad parameters by name', () => {
  const ids = tensor([1, 2], [2], 'i32');
  assert.throws(() => add(ids, 1), /add: needs f32/);
  assert.throws(() => exp(ids), /exp: needs f32/);
  assert.throws(() => pow(tensor([1]), Number.NaN), /pow: exponent/);
  assert.throws(() => clamp(tensor([1]), 2, 1), /clamp: bounds/);
  assert.throws(() => gelu(tensor([1]), 'erf' as never), /gelu: approximate/);
  assert.throws(() => scale(tensor([1]), '2' as never), /scale: factor/);
  assert.throws(() => add(2 as never, tensor([1])), /add: expected a tensor, got number/);
  assert.throws(() => sub(tensor([1]), 'x' as never), /sub: expected a tensor, got string/);
  assert.throws(() => maskedFill(tensor([1]), 1 as never, 0), /maskedFill: expected a tensor/);
  assert.throws(() => eq(tensor([1]), null as never), /eq: expected a tensor or a number/);
  assert.throws(() => where(tensor([1, 2], [2], 'i32'), 1, 0), /where: needs f32/);
});
