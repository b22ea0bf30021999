// Module tree: parameters and submodules registered by name, addressed by PyTorch-style dotted paths
// (`h.0.attn.c_attn.weight`), with train/eval mode and state dicts.
import { cast } from '../tensor/ops/shape.js';
import { check, keep, noGrad, shapeStr, type Tensor } from '../tensor/tensor.js';
import { parameter } from './parameter.js';

export type StateDict = Map<string, Tensor> | Record<string, Tensor>;

export interface LoadResult {
  /** Model keys the state dict did not have (only ever non-empty with strict: false). */
  missingKeys: string[];
  /** State dict keys the model does not have (only ever non-empty with strict: false). */
  unexpectedKeys: string[];
}

export abstract class Module {
  /** Set by train()/eval() on the whole subtree; layers such as dropout read it. */
  training = true;
  private readonly ownParameters = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Adds t as a parameter under name (marking it requiresGrad and kept) and returns it. */
  registerParameter(name: string, t: Tensor): Tensor {
    this.checkName(name, 'registerParameter');
    this.ownParameters.set(name, parameter(t));
    return t;
  }

  /** Adds m as a child under name and returns it. */
  registerModule<M extends Module>(name: string, m: M): M {
    this.checkName(name, 'registerModule');
    check(
      !m.modules().includes(this),
      'registerModule',
      () => `${name}: a module cannot contain itself or one of its ancestors`,
    );
    this.children.set(name, m);
    return m;
  }

  /** Removes the child registered under name (as `del module.name` in PyTorch) and returns it. */
  removeModule(name: string): Module {
    const m = this.children.get(name);
    check(m !== undefined, 'removeModule', () => `no child module "${name}"`);
    this.children.delete(name);
    return m;
  }

  private checkName(name: string, op: string): void {
    check(name.length > 0 && !name.includes('.'), op, () => `name "${name}" must be non-empty and contain no "."`);
    check(
      !this.ownParameters.has(name) && !this.children.has(name),
      op,
      () => `name "${name}" is already registered on this module`,
    );
  }

  /** Direct children in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /** This module and every descendant with its dotted path ('' for this one), each module once. */
  namedModules(): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, prefix: string): void => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([prefix, m]);
      for (const [name, child] of m.children) visit(child, prefix ? `${prefix}.${name}` : name);
    };
    visit(this, '');
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  // Every (path, tensor) pair of the tree, in registration order, a shared tensor under each of its paths.
  private allParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const visit = (m: Module, prefix: string): void => {
      for (const [name, t] of m.ownParameters) out.push([prefix + name, t]);
      for (const [name, child] of m.children) visit(child, `${prefix + name}.`);
    };
    visit(this, '');
    return out;
  }

  /** Parameters with their dotted paths in registration order; a shared (tied) parameter once, at its first path. */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [name, t] of this.allParameters()) {
      if (seen.has(t)) continue;
      seen.add(t);
      out.push([name, t]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /**
   * The parameters that train (requiresGrad), with their paths: all of them unless some were frozen (a LoRA base).
   * What optimizers, gradient clipping and checkpoints take.
   */
  namedTrainableParameters(): [string, Tensor][] {
    return this.namedParameters().filter(([, t]) => t.requiresGrad);
  }

  trainableParameters(): Tensor[] {
    return this.namedTrainableParameters().map(([, t]) => t);
  }

  /** Number of trainable values, each shared parameter counted once. */
  numParameters(): number {
    let n = 0;
    for (const t of this.parameters()) n += t.numel;
    return n;
  }

  /**
   * Stores the matrix parameters (weights and embeddings) in `dtype`, in place; vectors (biases, norms) stay f32.
   * bf16 is for inference: sampling and frozen reference or reward models hold half the memory, and a decode step
   * reads half the bytes. bf16 matrices are frozen (no gradient); casting back to f32 makes them trainable again.
   * The old buffers are left to the garbage collector, not kept in the buffer pool. Returns this.
   * `frozenOnly`: only matrices that do not train (a LoRA model's base), so the trainable ones stay f32.
   */
  toDtype(dtype: 'f32' | 'bf16', opts: { frozenOnly?: boolean } = {}): this {
    const casts = new Map<Tensor, Tensor>(); // a tied matrix is cast once and stays shared
    for (const m of this.modules())
      for (const [name, t] of m.ownParameters) {
        if (t.ndim !== 2 || t.dtype === dtype || (opts.frozenOnly && t.requiresGrad)) continue;
        let u = casts.get(t);
        if (!u) {
          u = keep(noGrad(() => cast(t, dtype)));
          u.requiresGrad = dtype === 'f32';
          if (t.name !== undefined) u.name = t.name;
          casts.set(t, u);
        }
        m.ownParameters.set(name, u);
        // Layers keep their parameters in fields of the same name (`this.weight`).
        const fields = m as unknown as Record<string, unknown>;
        if (fields[name] === t) fields[name] = u;
      }
    return this;
  }

  /** Sets training mode on this module and every descendant. Returns this. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Releases every parameter's gradient. */
  zeroGrad(): void {
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.grad = null;
    }
  }

  /**
   * Every parameter by dotted path, a tied parameter under each of its paths (as PyTorch does). The values are the
   * live parameters, not copies: serialise them before the next optimizer step.
   */
  stateDict(): Map<string, Tensor> {
    return new Map(this.allParameters());
  }

  /**
   * Copies values from sd into the parameters. Every problem (missing or unexpected keys when strict, shape or dtype
   * mismatches, released tensors) is collected first and reported in one error, and then nothing is changed.
   */
  loadStateDict(sd: StateDict, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const source = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !source.has(k));
    const unexpectedKeys = [...source.keys()].filter((k) => !own.has(k));
    const problems: string[] = [];
    if (strict) {
      for (const k of missingKeys) problems.push(`missing key ${k}`);
      for (const k of unexpectedKeys) problems.push(`unexpected key ${k}`);
    }
    const copies: [Tensor, Tensor][] = [];
    for (const [key, dst] of own) {
      const src = source.get(key);
      if (!src) continue;
      if (src.disposed) problems.push(`${key}: the state dict's tensor was released`);
      else if (src.shape.join() !== dst.shape.join())
        problems.push(`${key}: shape ${shapeStr(src.shape)} in the state dict, ${shapeStr(dst.shape)} in the model`);
      else if (src.dtype !== dst.dtype)
        problems.push(`${key}: dtype ${src.dtype} in the state dict, ${dst.dtype} in the model`);
      else copies.push([dst, src]);
    }
    check(
      problems.length === 0,
      'loadStateDict',
      () => `${problems.length} problem(s), nothing was loaded:\n  ${problems.join('\n  ')}`,
    );
    for (const [dst, src] of copies) if (dst !== src) (dst.buffer as Float32Array).set(src.buffer as Float32Array);
    return { missingKeys, unexpectedKeys };
  }
}

/** An indexable list of submodules, named 0, 1, 2, ... as in PyTorch's nn.ModuleList. */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }

  push(m: M): this {
    this.items.push(this.registerModule(String(this.items.length), m));
    return this;
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    check(
      Number.isInteger(i) && i >= -this.items.length && i < this.items.length,
      'ModuleList.at',
      () => `index ${i} is out of range for ${this.items.length} modules`,
    );
    return this.items.at(i)!;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
