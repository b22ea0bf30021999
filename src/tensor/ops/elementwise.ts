// Elementwise ops: arithmetic and comparisons with NumPy broadcasting, where/maskedFill, and activations.
// Each forward is one native kernel call; an operand's gradient is summed back over the axes it was broadcast on.
import { native } from '../native.js';
import { check, record, type Shape, shapeStr, Tensor } from '../tensor.js';
import { sumTo } from './reduce.js';

// Op codes of native/src/elementwise.cc.
const Bin = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  maximum: 4,
  minimum: 5,
  eq: 6,
  ne: 7,
  lt: 8,
  le: 9,
  gt: 10,
  ge: 11,
  maskKeep: 12,
  maskDrop: 13,
  winShare: 14,
  loseShare: 15,
} as const;
const Un = {
  neg: 0,
  exp: 1,
  log: 2,
  sqrt: 3,
  tanh: 4,
  sigmoid: 5,
  relu: 6,
  pow: 7,
  clamp: 8,
  geluTanh: 9,
  geluErf: 10,
  silu: 11,
  abs: 12,
  scale: 13,
} as const;

/** A tensor, or a number standing for a one-element operand. */
export type Operand = Tensor | number;

const dims = (shape: Shape): Int32Array => Int32Array.from(shape);
const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

function checkTensor(op: string, x: unknown): asserts x is Tensor {
  check(x instanceof Tensor, op, () => `expected a tensor, got ${typeof x}`);
  check(x.dtype === 'f32', op, () => `needs f32 tensors, got ${x.dtype} ${shapeStr(x.shape)}`);
}

function checkOperand(op: string, x: unknown): asserts x is Operand {
  if (typeof x !== 'number') checkTensor(op, x);
}

/** The NumPy broadcast of several shapes; throws naming the op and the shapes when they are incompatible. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes)
    for (let i = 1; i <= s.length; i++) {
      const d = s[s.length - i];
      if (d === out[rank - i] || d === 1) continue;
      check(out[rank - i] === 1, op, () => `shapes ${shapes.map(shapeStr).join(' and ')} do not broadcast`);
      out[rank - i] = d;
    }
  return out;
}

const shapeOf = (x: Operand): Shape => (x instanceof Tensor ? x.shape : []);
const tensors = (...xs: Operand[]): Tensor[] => xs.filter((x): x is Tensor => x instanceof Tensor);
const needsGrad = (x: Operand): x is Tensor => x instanceof Tensor && x.requiresGrad;

// a op b broadcast to outShape, unrecorded: the building block of forwards and backwards.
function binaryKernel(code: number, a: Tensor, b: Operand, outShape: Shape): Tensor {
  const out = Tensor.empty(outShape);
  if (b instanceof Tensor) native.binary(code, a.f32, dims(a.shape), b.f32, dims(b.shape), out.f32, dims(outShape));
  else native.binary(code, a.f32, dims(a.shape), b, null, out.f32, dims(outShape));
  return out;
}

function unaryKernel(code: number, x: Tensor, p0 = 0, p1 = 0): Tensor {
  const out = Tensor.empty(x.shape);
  native.unary(code, x.f32, out.f32, p0, p1);
  return out;
}

// A gradient at the broadcast shape summed down to its operand's shape; `owned` temporaries are released.
function reduceGrad(t: Tensor, shape: Shape, owned: boolean): Tensor {
  if (sameShape(t.shape, shape)) return t;
  const r = sumTo(t, shape);
  if (owned) t.dispose();
  return r;
}

function negatedGrad(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return unaryKernel(Un.neg, g);
  const r = sumTo(g, shape);
  native.scaleInPlace(r.f32, -1);
  return r;
}

// record() is given only the tensor operands, so the gradients for number operands are dropped.
function gradsFor(operands: Operand[], grads: (Tensor | null)[]): (Tensor | null)[] {
  return grads.filter((_, i) => operands[i] instanceof Tensor);
}

function binaryForward(op: string, code: number, a: Tensor, b: Operand): Tensor {
  checkTensor(op, a);
  checkOperand(op, b);
  return binaryKernel(code, a, b, broadcastShapes(op, a.shape, shapeOf(b)));
}

/** a + b with broadcasting. */
export function add(a: Tensor, b: Operand): Tensor {
  const out = binaryForward('add', Bin.add, a, b);
  return record('add', out, tensors(a, b), (g) =>
    gradsFor(
      [a, b],
      [a.requiresGrad ? reduceGrad(g, a.shape, false) : null, needsGrad(b) ? reduceGrad(g, b.shape, false) : null],
    ),
  );
}

/** a - b with broadcasting. */
export function sub(a: Tensor, b: Operand): Tensor {
  const out = binaryForward('sub', Bin.sub, a, b);
  return record('sub', out, tensors(a, b), (g) =>
    gradsFor(
      [a, b],
      [a.requiresGrad ? reduceGrad(g, a.shape, false) : null, needsGrad(b) ? negatedGrad(g, b.shape) : null],
    ),
  );
}

/** a · b with broadcasting. */
export function mul(a: Tensor, b: Operand): Tensor {
  const out = binaryForward('mul', Bin.mul, a, b);
  return record('mul', out, tensors(a, b), (g) =>
    gradsFor(
      [a, b],
      [
        a.requiresGrad ? reduceGrad(binaryKernel(Bin.mul, g, b, g.shape), a.shape, true) : null,
        needsGrad(b) ? reduceGrad(binaryKernel(Bin.mul, g, a, g.shape), b.shape, true) : null,
      ],
    ),
  );
}

/** a / b with broadcasting. */
export function div(a: Tensor, b: Operand): Tensor {
  const out = binaryForward('div', Bin.div, a, b);
  return record('div', out, tensors(a, b), (g) => {
    const ga = a.requiresGrad ? reduceGrad(binaryKernel(Bin.div, g, b, g.shape), a.shape, true) : null;
    let gb: Tensor | null = null;
    if (needsGrad(b)) {
      // d(a/b)/db = -(a/b)/b = -out/b
      const gOut = binaryKernel(Bin.mul, g, out, g.shape);
      const t = binaryKernel(Bin.div, gOut, b, g.shape);
      gOut.dispose();
      gb = reduceGrad(t, b.shape, true);
      native.scaleInPlace(gb.f32, -1);
    }
    return gradsFor([a, b], [ga, gb]);
  });
}

// maximum/minimum: the winning operand takes the gradient, a tie splits it evenly.
function extremum(op: 'maximum' | 'minimum', a: Tensor, b: Operand): Tensor {
  const out = binaryForward(op, op === 'maximum' ? Bin.maximum : Bin.minimum, a, b);
  const shareCode = op === 'maximum' ? Bin.winShare : Bin.loseShare;
  const grad = (x: Tensor, other: Operand, g: Tensor): Tensor => {
    const share = binaryKernel(shareCode, x, other, g.shape);
    const t = binaryKernel(Bin.mul, g, share, g.shape);
    share.dispose();
    return reduceGrad(t, x.shape, true);
  };
  return record(op, out, tensors(a, b), (g) =>
    gradsFor([a, b], [a.requiresGrad ? grad(a, b, g) : null, needsGrad(b) ? grad(b, a, g) : null]),
  );
}

/** Elementwise maximum with broadcasting (a tie splits the gradient). */
export function maximum(a: Tensor, b: Operand): Tensor {
  return extremum('maximum', a, b);
}

/** Elementwise minimum with broadcasting (a tie splits the gradient). */
export function minimum(a: Tensor, b: Operand): Tensor {
  return extremum('minimum', a, b);
}

// Comparisons read any dtype (i32 token ids against a pad id, say) and give an f32 0/1 mask without gradient.
function asF32(x: Tensor): Tensor {
  if (x.dtype === 'f32') return x;
  const y = Tensor.empty(x.shape);
  if (x.dtype === 'i32') native.i32ToF32(x.i32, y.f32);
  else native.fromBf16(x.u16, y.f32);
  return y;
}

function compare(op: string, code: number, a: Tensor, b: Operand): Tensor {
  check(a instanceof Tensor, op, () => `expected a tensor, got ${typeof a}`);
  check(b instanceof Tensor || typeof b === 'number', op, () => `expected a tensor or a number, got ${typeof b}`);
  const outShape = broadcastShapes(op, a.shape, shapeOf(b));
  const af = asF32(a);
  const bf = b instanceof Tensor ? asF32(b) : b;
  const out = binaryKernel(code, af, bf, outShape);
  if (af !== a) af.dispose();
  if (bf !== b && bf instanceof Tensor) bf.dispose();
  return out;
}

/** a == b as an f32 0/1 mask. */
export const eq = (a: Tensor, b: Operand): Tensor => compare('eq', Bin.eq, a, b);
/** a != b as an f32 0/1 mask. */
export const ne = (a: Tensor, b: Operand): Tensor => compare('ne', Bin.ne, a, b);
/** a < b as an f32 0/1 mask. */
export const lt = (a: Tensor, b: Operand): Tensor => compare('lt', Bin.lt, a, b);
/** a <= b as an f32 0/1 mask. */
export const le = (a: Tensor, b: Operand): Tensor => compare('le', Bin.le, a, b);
/** a > b as an f32 0/1 mask. */
export const gt = (a: Tensor, b: Operand): Tensor => compare('gt', Bin.gt, a, b);
/** a >= b as an f32 0/1 mask. */
export const ge = (a: Tensor, b: Operand): Tensor => compare('ge', Bin.ge, a, b);

function whereKernel(cond: Tensor, a: Operand, b: Operand, outShape: Shape): Tensor {
  const out = Tensor.empty(outShape);
  const arg = (x: Operand) => (x instanceof Tensor ? [x.f32, dims(x.shape)] : [x, null]);
  native.where(cond.f32, dims(cond.shape), ...arg(a), ...arg(b), out.f32, dims(outShape));
  return out;
}

/** cond ? a : b elementwise with broadcasting; cond is an f32 mask (nonzero takes a). Gradients flow to a and b. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  checkTensor('where', cond);
  checkOperand('where', a);
  checkOperand('where', b);
  const outShape = broadcastShapes('where', cond.shape, shapeOf(a), shapeOf(b));
  const out = whereKernel(cond, a, b, outShape);
  const masked = (code: number, shape: Shape, g: Tensor) =>
    reduceGrad(binaryKernel(code, g, cond, g.shape), shape, true);
  return record('where', out, tensors(a, b), (g) =>
    gradsFor(
      [a, b],
      [needsGrad(a) ? masked(Bin.maskKeep, a.shape, g) : null, needsGrad(b) ? masked(Bin.maskDrop, b.shape, g) : null],
    ),
  );
}

/** x with `value` wherever the mask (broadcast to x's shape) is nonzero. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  checkTensor('maskedFill', x);
  checkTensor('maskedFill', mask);
  check(typeof value === 'number', 'maskedFill', () => `value must be a number, got ${typeof value}`);
  const outShape = broadcastShapes('maskedFill', x.shape, mask.shape);
  check(
    sameShape(outShape, x.shape),
    'maskedFill',
    () => `mask ${shapeStr(mask.shape)} is larger than x ${shapeStr(x.shape)}`,
  );
  const out = whereKernel(mask, value, x, x.shape);
  return record('maskedFill', out, [x], (g) => [binaryKernel(Bin.maskDrop, g, mask, g.shape)]);
}

function unaryOp(op: string, code: number, x: Tensor, p0 = 0, p1 = 0): Tensor {
  checkTensor(op, x);
  const out = unaryKernel(code, x, p0, p1);
  return record(op, out, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    native.unaryBackward(code, x.f32, out.f32, g.f32, dx.f32, p0, p1);
    return [dx];
  });
}

/** -x */
export const neg = (x: Tensor): Tensor => unaryOp('neg', Un.neg, x);
/** e^x */
export const exp = (x: Tensor): Tensor => unaryOp('exp', Un.exp, x);
/** Natural log. */
export const log = (x: Tensor): Tensor => unaryOp('log', Un.log, x);
/** Square root. */
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', Un.sqrt, x);
/** Hyperbolic tangent. */
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', Un.tanh, x);
/** 1 / (1 + e^-x) */
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', Un.sigmoid, x);
/** max(x, 0); the gradient at 0 is 0. */
export const relu = (x: Tensor): Tensor => unaryOp('relu', Un.relu, x);
/** x · sigmoid(x) */
export const silu = (x: Tensor): Tensor => unaryOp('silu', Un.silu, x);
/** |x|; the gradient at 0 is 0. */
export const abs = (x: Tensor): Tensor => unaryOp('abs', Un.abs, x);

/** x^p for a constant exponent. */
export function pow(x: Tensor, p: number): Tensor {
  check(Number.isFinite(p), 'pow', () => `exponent must be a finite number, got ${p}`);
  return unaryOp('pow', Un.pow, x, p);
}

/** x limited to [lo, hi] (null: unbounded on that side); the gradient is 0 outside. */
export function clamp(x: Tensor, lo: number | null, hi: number | null): Tensor {
  const l = lo ?? -Infinity;
  const h = hi ?? Infinity;
  check(!(l > h) && !Number.isNaN(l) && !Number.isNaN(h), 'clamp', () => `bounds [${lo}, ${hi}] are not ordered`);
  return unaryOp('clamp', Un.clamp, x, l, h);
}

/** GELU: 'tanh' is GPT-2's approximation, 'none' the exact x·Φ(x). */
export function gelu(x: Tensor, approximate: 'tanh' | 'none' = 'tanh'): Tensor {
  check(
    approximate === 'tanh' || approximate === 'none',
    'gelu',
    () => `approximate must be 'tanh' or 'none', got ${approximate}`,
  );
  return unaryOp('gelu', approximate === 'tanh' ? Un.geluTanh : Un.geluErf, x);
}

/** x · s for a constant s. */
export function scale(x: Tensor, s: number): Tensor {
  check(typeof s === 'number', 'scale', () => `factor must be a number, got ${typeof s}`);
  return unaryOp('scale', Un.scale, x, s);
}
