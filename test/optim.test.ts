import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdamW, clipGradNorm, type Optimizer, type OptimizerStateDict, parameter, SGD } from '../src/nn/index.js';
import { keep, Rng, randn, type Tensor, tensor } from '../src/tensor/index.js';

// Shapes that cover the vector body, the scalar tail, a multi-thread split and a single element.
const SHAPES = [[3, 37], [40000], [1]];

function makeParams(seed: number): Tensor[] {
  const rng = new Rng(seed);
  return SHAPES.map((s) => parameter(randn(s, rng)));
}

function copyParams(ps: Tensor[]): Tensor[] {
  return ps.map((p) => parameter(tensor(p.f32, p.shape)));
}

// Deterministic gradients for step t; parameter 2 gets none on odd steps (it must be skipped, keeping its state).
function gradsFor(t: number, i: number, p: Tensor): Tensor | null {
  if (i === 2 && t % 2 === 1) return null;
  return keep(randn(p.shape, new Rng(1000 * t + i), 0.5 + t));
}

function setGrads(ps: Tensor[], t: number): void {
  ps.forEach((p, i) => {
    p.grad?.dispose();
    p.grad = gradsFor(t, i, p);
  });
}

function assertClose(actual: Float32Array, expected: Float64Array, what: string): void {
  for (let j = 0; j < expected.length; j++) {
    const err = Math.abs(actual[j] - expected[j]);
    assert.ok(err <= 1e-6 * Math.max(1, Math.abs(expected[j])), `${what}[${j}]: ${actual[j]} vs ${expected[j]}`);
  }
}

interface Ref {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
  step: number;
}

// torch.optim.AdamW in float64.
function refAdamW(r: Ref, g: Float32Array, lr: number, b1: number, b2: number, eps: number, wd: number): void {
  r.step++;
  const bc1 = 1 - b1 ** r.step;
  const bc2 = 1 - b2 ** r.step;
  for (let j = 0; j < r.p.length; j++) {
    r.p[j] *= 1 - lr * wd;
    r.m[j] = b1 * r.m[j] + (1 - b1) * g[j];
    r.v[j] = b2 * r.v[j] + (1 - b2) * g[j] * g[j];
    const denom = Math.sqrt(r.v[j]) / Math.sqrt(bc2) + eps;
    r.p[j] -= ((lr / bc1) * r.m[j]) / denom;
  }
}

// torch.optim.SGD in float64 (m holds the momentum buffer).
function refSGD(r: Ref, g: Float32Array, lr: number, momentum: number, wd: number): void {
  r.step++;
  for (let j = 0; j < r.p.length; j++) {
    let d = g[j] + wd * r.p[j];
    if (momentum !== 0) {
      r.m[j] = r.step === 1 ? d : momentum * r.m[j] + d;
      d = r.m[j];
    }
    r.p[j] -= lr * d;
  }
}

function refsOf(ps: Tensor[]): Ref[] {
  return ps.map((p) => ({
    p: Float64Array.from(p.f32),
    m: new Float64Array(p.numel),
    v: new Float64Array(p.numel),
    step: 0,
  }));
}

test('AdamW matches torch formulas over several steps, with groups, weight decay and skipped params', () => {
  const ps = makeParams(1);
  const refs = refsOf(ps);
  // group 0: the matrix with its own lr and wd; group 1: the rest with the defaults
  const opt = new AdamW([{ params: [ps[0]], lr: 3e-3, weightDecay: 0.1 }, { params: [ps[1], ps[2]] }], {
    lr: 1e-2,
    betas: [0.8, 0.99],
    eps: 1e-6,
  });
  const groupOf = [
    { lr: 3e-3, wd: 0.1 },
    { lr: 1e-2, wd: 0.01 },
    { lr: 1e-2, wd: 0.01 },
  ];
  for (let t = 0; t < 6; t++) {
    setGrads(ps, t);
    // from step 3 on, a schedule overrides the base lr; group 0 keeps its ratio 0.3
    const override = t >= 3 ? 5e-3 : undefined;
    opt.step(override);
    ps.forEach((p, i) => {
      if (!p.grad) return;
      const lr = override === undefined ? groupOf[i].lr : (override * groupOf[i].lr) / 1e-2;
      refAdamW(refs[i], p.grad.f32, lr, 0.8, 0.99, 1e-6, groupOf[i].wd);
    });
    for (const [i, p] of ps.entries()) assertClose(p.f32, refs[i].p, `step ${t} param ${i}`);
  }
  assert.equal(opt.steps, 6);
  assert.deepEqual(opt.stateDict().meta.paramSteps, [6, 6, 3]);
  opt.dispose();
});

for (const momentum of [0, 0.9]) {
  test(`SGD matches torch formulas, momentum ${momentum}`, () => {
    const ps = makeParams(2);
    const refs = refsOf(ps);
    const opt = new SGD(
      [
        { params: [ps[0], ps[1]], weightDecay: 0.05 },
        { params: [ps[2]], lr: 0.02 },
      ],
      {
        lr: 0.1,
        momentum,
      },
    );
    const groupOf = [
      { lr: 0.1, wd: 0.05 },
      { lr: 0.1, wd: 0.05 },
      { lr: 0.02, wd: 0 },
    ];
    for (let t = 0; t < 5; t++) {
      setGrads(ps, t);
      opt.step();
      ps.forEach((p, i) => {
        if (p.grad) refSGD(refs[i], p.grad.f32, groupOf[i].lr, momentum, groupOf[i].wd);
      });
      for (const [i, p] of ps.entries()) assertClose(p.f32, refs[i].p, `step ${t} param ${i}`);
    }
    assert.equal(opt.stateDict().tensors.size, momentum === 0 ? 0 : 3);
  });
}

function cloneState(sd: OptimizerStateDict): OptimizerStateDict {
  const tensors = new Map([...sd.tensors].map(([k, t]) => [k, tensor(t.f32, t.shape)] as [string, Tensor]));
  return { meta: JSON.parse(JSON.stringify(sd.meta)), tensors };
}

function checkExactResume(make: (ps: Tensor[], variant: boolean) => Optimizer): void {
  const ps = makeParams(3);
  const opt = make(ps, false);
  const run = (o: Optimizer, params: Tensor[], from: number) => {
    for (let t = from; t < from + 5; t++) {
      setGrads(params, t);
      o.step(t % 3 === 0 ? 4e-3 : undefined);
    }
  };
  run(opt, ps, 0);
  const saved = cloneState(opt.stateDict());
  const resumedParams = copyParams(ps);
  run(opt, ps, 5);
  // a new optimizer built with other hyperparameters: the state dict brings the saved ones back
  const resumed = make(resumedParams, true);
  resumed.loadStateDict(saved);
  run(resumed, resumedParams, 5);
  for (const [i, p] of ps.entries()) assert.deepEqual(resumedParams[i].f32, p.f32, `param ${i} differs after resume`);
  assert.equal(resumed.steps, 10);
}

test('AdamW resumes exactly from a state dict', () => {
  checkExactResume(
    (ps, variant) =>
      new AdamW(
        [
          { params: [ps[0]], weightDecay: variant ? 0.5 : 0 },
          { params: ps.slice(1), lr: 2e-3 },
        ],
        {
          lr: variant ? 1 : 1e-2,
          betas: variant ? [0.5, 0.5] : [0.9, 0.95],
        },
      ),
  );
});

test('SGD with momentum resumes exactly from a state dict', () => {
  checkExactResume((ps, variant) => new SGD(ps, { lr: 0.05, momentum: variant ? 0.5 : 0.9, weightDecay: 0.01 }));
});

test('optimizer loadStateDict lists every problem and changes nothing', () => {
  const ps = makeParams(4);
  const opt = new AdamW(ps, { lr: 1e-2 });
  setGrads(ps, 0);
  opt.step();
  const sd = cloneState(opt.stateDict());
  const other = new AdamW(makeParams(5), { lr: 1e-2 });
  setGrads(other.groups[0].params as Tensor[], 1);
  other.step();
  const before = cloneState(other.stateDict());
  sd.tensors.delete('1.exp_avg');
  sd.tensors.set('0.exp_avg_sq', tensor([1, 2], [2]));
  sd.tensors.set('7.exp_avg', tensor([1], [1]));
  sd.meta.hyper.beta1 = 1.5;
  assert.throws(
    () => other.loadStateDict(sd),
    (err: Error) => {
      assert.match(err.message, /^AdamW\.loadStateDict: 4 problem\(s\), nothing was loaded/);
      assert.match(err.message, /invalid beta1: 1\.5/);
      assert.match(err.message, /missing key 1\.exp_avg/);
      assert.match(err.message, /0\.exp_avg_sq: \[2\] f32 does not fit parameter 0 \[3, 37\]/);
      assert.match(err.message, /unexpected key 7\.exp_avg/);
      return true;
    },
  );
  const after = other.stateDict();
  assert.deepEqual(after.meta, before.meta);
  for (const [k, t] of before.tensors) assert.deepEqual(after.tensors.get(k)!.f32, t.f32);
  assert.throws(() => other.loadStateDict({ ...sd, meta: { ...sd.meta, kind: 'SGD' } }), /state dict is for SGD/);
});

test('optimizers check their arguments', () => {
  const ps = makeParams(6);
  assert.throws(() => new AdamW([], { lr: 1 }), /AdamW: got an empty parameter list/);
  assert.throws(() => new AdamW(ps, { lr: -1 }), /AdamW: invalid learning rate: -1/);
  assert.throws(() => new AdamW(ps, { lr: 1, betas: [0.9, 1] }), /AdamW: invalid beta2: 1/);
  assert.throws(() => new SGD([ps[0], ps[0]], { lr: 1 }), /SGD: parameter 1 \[3, 37\] appears more than once/);
  assert.throws(() => new SGD(ps, { lr: 1, momentum: -0.1 }), /SGD: invalid momentum/);
  const opt = new SGD(ps, { lr: 1 });
  setGrads(ps, 0);
  ps[2].grad = keep(tensor([1, 2], [2]));
  const before = ps.map((p) => p.toArray());
  assert.throws(() => opt.step(), /SGD\.step: gradient \[2\] f32 does not fit parameter 2 \[1\]/);
  assert.deepEqual(
    ps.map((p) => p.toArray()),
    before,
  );
  assert.equal(opt.steps, 0);
  opt.zeroGrad();
  assert.ok(ps.every((p) => p.grad === null));
});

test('clipGradNorm returns the total norm and scales gradients above maxNorm', () => {
  const a = parameter(tensor([0, 0], [2]));
  const b = parameter(tensor([0], [1]));
  const frozen = parameter(tensor([5], [1]));
  a.grad = keep(tensor([3, 4], [2]));
  b.grad = keep(tensor([12], [1]));
  // |(3, 4, 12)| = 13; the shared `a` counts once, `frozen` has no grad
  assert.equal(clipGradNorm([a, b, a, frozen], 100), 13);
  assert.deepEqual(a.grad.toArray(), [3, 4]);
  assert.equal(clipGradNorm([a, b], 6.5), 13);
  const coef = 6.5 / (13 + 1e-6);
  assert.deepEqual(a.grad.toArray(), [Math.fround(3 * coef), Math.fround(4 * coef)]);
  assert.deepEqual(b.grad.toArray(), [Math.fround(12 * coef)]);
  assert.ok(Math.abs(clipGradNorm([a, b], Number.POSITIVE_INFINITY) - 6.5) < 1e-5);
});

test('clipGradNorm sums large gradients in float64 and leaves non-finite ones alone', () => {
  const rng = new Rng(11);
  const p = parameter(randn([100003], rng));
  p.grad = keep(randn([100003], rng, 3));
  let sumSq = 0;
  for (const x of p.grad.f32) sumSq += x * x;
  const expected = Math.sqrt(sumSq);
  const norm = clipGradNorm([p], 1);
  assert.ok(Math.abs(norm - expected) <= 1e-12 * expected, `${norm} vs ${expected}`);
  assert.ok(Math.abs(clipGradNorm([p], Number.POSITIVE_INFINITY) - 1) < 1e-5);
  p.grad.f32[7] = Number.POSITIVE_INFINITY;
  const copy = Float32Array.from(p.grad.f32);
  assert.equal(clipGradNorm([p], 1), Number.POSITIVE_INFINITY);
  assert.deepEqual(p.grad.f32, copy);
  assert.throws(() => clipGradNorm([p], -1), /clipGradNorm: maxNorm must be >= 0/);
});
