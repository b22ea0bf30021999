// Tensor: a contiguous n-d array on a device (only `cpu` today), with define-by-run autograd and scoped release.
import { native } from './native.js';

export type DType = 'f32' | 'bf16' | 'i32';
export type Device = 'cpu';
export type Shape = readonly number[];
type Buffer = Float32Array | Uint16Array | Int32Array;

/** A buffer shared by a tensor and its views; returned to the pool when the last one is released. */
class Storage {
  refs = 1;
  constructor(readonly buf: Buffer) {}
}

// Released buffers are reused by exact size: a training loop's allocations repeat step after step,
// so after the first step memory stays flat and nothing is zero-filled again. Sizes are kept in least-recently-used
// order: when the pool is full, the sizes unused for longest go first (sampling and PPO see ever new lengths, and
// their old sizes would otherwise fill the pool for good).
const pool = new Map<string, Buffer[]>();
let pooledBytes = 0;
let poolLimitBytes = 2 ** 30;

function touch(key: string, free: Buffer[]): void {
  pool.delete(key);
  pool.set(key, free);
}

function allocate(dtype: DType, n: number): Buffer {
  const key = dtype + n;
  const free = pool.get(key);
  const reused = free?.pop();
  if (reused) {
    pooledBytes -= reused.byteLength;
    touch(key, free!);
    return reused;
  }
  if (dtype === 'f32') return new Float32Array(n);
  if (dtype === 'bf16') return new Uint16Array(n);
  return new Int32Array(n);
}

function release(dtype: DType, buf: Buffer): void {
  if (buf.byteLength > poolLimitBytes) return; // let the garbage collector have it
  const key = dtype + buf.length;
  const free = pool.get(key) ?? [];
  free.push(buf);
  touch(key, free);
  pooledBytes += buf.byteLength;
  for (const [oldKey, old] of pool) {
    if (pooledBytes <= poolLimitBytes) break;
    while (old.length > 0 && pooledBytes > poolLimitBytes) pooledBytes -= old.pop()!.byteLength;
    if (old.length === 0) pool.delete(oldKey);
  }
}

/** Caps the bytes of released buffers kept for reuse (default 1 GiB); the least recently used sizes go first. */
export function setPoolLimit(bytes: number): void {
  if (!(bytes >= 0)) throw new Error(`setPoolLimit: bytes must be >= 0, got ${bytes}`);
  poolLimitBytes = bytes;
}

/** Bytes held by released buffers waiting for reuse. */
export function pooledMemory(): number {
  return pooledBytes;
}

export function numelOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Throws an error that names the op and what was wrong with its input. */
export function check(cond: boolean, op: string, msg: () => string): asserts cond {
  if (!cond) throw new Error(`${op}: ${msg()}`);
}

export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Gradients for each input, given the gradient of the output (null where an input needs none). */
  backward: (grad: Tensor) => (Tensor | null)[];
  released: boolean;
}

export class Tensor {
  readonly device: Device = 'cpu';
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: GradNode | null = null;
  /** Kept tensors (parameters, gradients, optimizer state) survive the end of a `tidy` scope. */
  kept = false;
  name?: string;
  private storage: Storage | null;

  private constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    storage: Storage,
  ) {
    this.storage = storage;
    const scope = scopes[scopes.length - 1];
    if (scope) scope.add(this);
  }

  /** An uninitialised tensor (its memory may hold old values): for ops that write every element. */
  static empty(shape: Shape, dtype: DType = 'f32'): Tensor {
    for (const d of shape)
      check(Number.isInteger(d) && d >= 0, 'empty', () => `shape ${shapeStr(shape)} must hold non-negative integers`);
    return new Tensor([...shape], dtype, new Storage(allocate(dtype, numelOf(shape))));
  }

  /** Wraps an existing buffer without copying it. */
  static fromBuffer(buf: Buffer, shape: Shape): Tensor {
    const dtype: DType = buf instanceof Float32Array ? 'f32' : buf instanceof Uint16Array ? 'bf16' : 'i32';
    check(
      numelOf(shape) === buf.length,
      'fromBuffer',
      () => `${buf.length} values cannot fill shape ${shapeStr(shape)}`,
    );
    return new Tensor([...shape], dtype, new Storage(buf));
  }

  /** A tensor with a new shape over the same memory (the caller checks the element count). */
  static viewOf(base: Tensor, shape: Shape): Tensor {
    const s = base.live('view');
    s.refs++;
    return new Tensor([...shape], base.dtype, s);
  }

  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return numelOf(this.shape);
  }
  /** Size of one axis; negative axes count from the end. */
  size(axis: number): number {
    return this.shape[normAxis(axis, this.ndim, 'size')];
  }
  get disposed(): boolean {
    return this.storage === null;
  }

  private live(op: string): Storage {
    if (!this.storage)
      throw new Error(
        `${op}: tensor ${shapeStr(this.shape)}${this.name ? ` (${this.name})` : ''} was released ` +
          '(its tidy scope ended, dispose() was called, or backward() freed its graph); keep() what you reuse',
      );
    return this.storage;
  }

  /** The raw buffer, whatever the dtype. */
  get buffer(): Buffer {
    return this.live('buffer').buf;
  }
  get f32(): Float32Array {
    const b = this.live('f32').buf;
    check(b instanceof Float32Array, 'f32', () => `tensor is ${this.dtype}, not f32`);
    return b;
  }
  get u16(): Uint16Array {
    const b = this.live('u16').buf;
    check(b instanceof Uint16Array, 'u16', () => `tensor is ${this.dtype}, not bf16`);
    return b;
  }
  get i32(): Int32Array {
    const b = this.live('i32').buf;
    check(b instanceof Int32Array, 'i32', () => `tensor is ${this.dtype}, not i32`);
    return b;
  }

  /** True when this tensor's memory is shared with another live tensor (a view). */
  get shared(): boolean {
    return this.live('shared').refs > 1;
  }

  /** Returns the memory to the pool now. Safe to call twice. */
  dispose(): void {
    if (!this.storage) return;
    if (--this.storage.refs === 0) release(this.dtype, this.storage.buf);
    this.storage = null;
    this.gradFn = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** The single value of a one-element tensor. */
  item(): number {
    check(this.numel === 1, 'item', () => `tensor has shape ${shapeStr(this.shape)}, not one element`);
    const b = this.buffer;
    return this.dtype === 'bf16' ? bf16ToNumber(b[0]) : b[0];
  }

  /** A plain copy of the values (bf16 decoded to numbers). */
  toArray(): number[] {
    const b = this.buffer;
    return this.dtype === 'bf16' ? Array.from(b, bf16ToNumber) : Array.from(b);
  }

  toString(): string {
    return `Tensor(${shapeStr(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

function bf16ToNumber(h: number): number {
  const f = new Float32Array(new Uint32Array([h << 16]).buffer);
  return f[0];
}

export function normAxis(axis: number, ndim: number, op: string): number {
  const a = axis < 0 ? axis + ndim : axis;
  check(Number.isInteger(a) && a >= 0 && a < ndim, op, () => `axis ${axis} is out of range for ${ndim} dimensions`);
  return a;
}

// ---- scopes: deterministic release that a training loop cannot get wrong ----

const scopes: Set<Tensor>[] = [];

function collect(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collect(v, into);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value)) collect(v, into);
}

/**
 * Runs fn and releases every tensor it created, except those it returns (in an array or plain object)
 * and those marked keep(). Released even when fn throws. Tensors made outside any scope are left to the GC.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const t of scope) if (!t.kept) t.dispose();
    throw err;
  }
  scopes.pop();
  const out = new Set<Tensor>();
  collect(result, out);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (out.has(t)) parent?.add(t);
    else if (!t.kept) t.dispose();
  }
  return result;
}

/** Marks a tensor to outlive every scope (until dispose()). */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  for (const s of scopes) s.delete(t);
  return t;
}

// ---- autograd ----

let gradEnabled = true;

/** Runs fn without recording a graph: for inference, frozen models and optimizer updates. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Attaches a backward function to an op's output when any input needs a gradient. Returns out. */
export function record(
  op: string,
  out: Tensor,
  inputs: readonly Tensor[],
  backward: (grad: Tensor) => (Tensor | null)[],
): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.gradFn = { op, inputs, backward, released: false };
  }
  return out;
}

/** A tensor that shares x's values but not its graph (stop-gradient). */
export function detach(x: Tensor): Tensor {
  return Tensor.viewOf(x, x.shape);
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

function accumulateInto(target: Tensor, g: Tensor): void {
  native.addInPlace(target.f32, g.f32, 1);
}

/**
 * Back-propagates from `root` (a one-element loss unless `grad` is given), adding into each leaf's `.grad`.
 * The graph is freed afterwards unless retainGraph is set; intermediate gradients are released as they are used.
 */
export function backward(root: Tensor, grad?: Tensor, opts: { retainGraph?: boolean } = {}): void {
  check(root.requiresGrad, 'backward', () => 'tensor does not require grad (no parameter reached it, or noGrad)');
  if (!grad) {
    check(
      root.numel === 1,
      'backward',
      () => `needs a one-element loss or an explicit grad, got ${shapeStr(root.shape)}`,
    );
    const v = root.item();
    check(Number.isFinite(v), 'backward', () => `loss is ${v}${root.gradFn ? ` (from op ${root.gradFn.op})` : ''}`);
  } else {
    check(
      numelOf(grad.shape) === root.numel,
      'backward',
      () => `grad ${shapeStr(grad.shape)} does not match ${shapeStr(root.shape)}`,
    );
  }
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>();
  const seed = Tensor.empty(root.shape);
  if (grad) seed.f32.set(grad.f32);
  else seed.f32.fill(1);
  grads.set(root, seed);
  for (const t of order) {
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    const node = t.gradFn;
    if (!node) {
      if (t.grad === null) {
        // A shared buffer (a view of another gradient) is copied so that later accumulation cannot alias.
        t.grad = keep(g.shared ? copyOf(g) : g);
        if (t.grad !== g) g.dispose();
      } else {
        accumulateInto(t.grad, g);
        g.dispose();
      }
      continue;
    }
    check(
      !node.released,
      'backward',
      () => `graph through op ${node.op} was already freed by an earlier backward(); pass { retainGraph: true }`,
    );
    const inGrads = node.backward(g);
    for (let i = 0; i < node.inputs.length; i++) {
      const input = node.inputs[i];
      let gi = inGrads[i];
      if (!gi || !input.requiresGrad) {
        if (gi && gi !== g) gi.dispose();
        continue;
      }
      check(
        numelOf(gi.shape) === input.numel,
        node.op,
        () => `backward produced grad ${shapeStr(gi!.shape)} for input ${shapeStr(input.shape)}`,
      );
      if (gi === g) gi = Tensor.viewOf(g, input.shape);
      const prev = grads.get(input);
      if (!prev) grads.set(input, gi);
      else {
        const target = prev.shared ? copyOf(prev) : prev;
        if (target !== prev) prev.dispose();
        accumulateInto(target, gi);
        gi.dispose();
        grads.set(input, target);
      }
    }
    g.dispose();
    if (!opts.retainGraph) {
      // Drop the closure now so the tensors it saved can be reclaimed without waiting for the graph to go.
      node.released = true;
      node.backward = () => [];
    }
  }
}

function copyOf(t: Tensor): Tensor {
  const c = Tensor.empty(t.shape, t.dtype);
  (c.buffer as Float32Array).set(t.buffer as Float32Array);
  return c;
}
