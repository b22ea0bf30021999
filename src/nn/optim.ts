// Optimizers with torch.optim semantics. Each parameter is updated by one fused native kernel; the state
// (per-parameter step counts and moment tensors) round-trips through a state dict for exact resume.
import { zeros } from '../tensor/create.js';
import { native } from '../tensor/native.js';
import { check, keep, shapeStr, Tensor } from '../tensor/tensor.js';

export interface ParamGroup {
  params: Tensor[];
  /** This group's learning rate (default: the optimizer's lr). */
  lr?: number;
  /** This group's weight decay (default: the optimizer's weightDecay). */
  weightDecay?: number;
}

export interface OptimizerGroup {
  readonly params: readonly Tensor[];
  lr: number;
  weightDecay: number;
}

export interface OptimizerStateDict {
  /** JSON-serialisable scalars. */
  meta: {
    kind: string;
    /** step() calls so far. */
    steps: number;
    /** Hyperparameters shared by all groups (betas and eps, or momentum). */
    hyper: Record<string, number>;
    lr: number;
    groups: { lr: number; weightDecay: number; size: number }[];
    /** Updates applied to each parameter, indexed over all groups' params in order; 0 = no state yet. */
    paramSteps: number[];
  };
  /** State tensors keyed `<param index>.<slot>` (slots as in torch: exp_avg, exp_avg_sq, momentum_buffer). */
  tensors: Map<string, Tensor>;
}

function checkRate(cond: boolean, op: string, what: string, value: number): void {
  check(cond && Number.isFinite(value), op, () => `invalid ${what}: ${value}`);
}

export abstract class Optimizer {
  readonly groups: OptimizerGroup[];
  /** The base learning rate: step(lr) scales every group's lr by lr / this.lr. */
  lr: number;
  /** step() calls so far. */
  steps = 0;
  private readonly params: Tensor[] = [];
  private paramSteps: number[];
  private slots: (Tensor[] | null)[];

  protected constructor(
    protected readonly op: string,
    params: Tensor[] | ParamGroup[],
    lr: number,
    weightDecay: number,
  ) {
    checkRate(lr >= 0, op, 'learning rate', lr);
    checkRate(weightDecay >= 0, op, 'weight decay', weightDecay);
    check(params.length > 0, op, () => 'got an empty parameter list');
    const groups: ParamGroup[] =
      params[0] instanceof Tensor ? [{ params: params as Tensor[] }] : (params as ParamGroup[]);
    this.lr = lr;
    this.groups = groups.map((g, gi) => {
      const group = { params: [...g.params], lr: g.lr ?? lr, weightDecay: g.weightDecay ?? weightDecay };
      checkRate(group.lr >= 0, op, `learning rate in group ${gi}`, group.lr);
      checkRate(group.weightDecay >= 0, op, `weight decay in group ${gi}`, group.weightDecay);
      return group;
    });
    const seen = new Set<Tensor>();
    for (const g of this.groups)
      for (const p of g.params) {
        check(p instanceof Tensor, op, () => 'params must be tensors or groups of tensors');
        check(!seen.has(p), op, () => `parameter ${this.label(p, this.params.length)} appears more than once`);
        check(
          !p.disposed && p.dtype === 'f32',
          op,
          () => `parameter ${this.label(p, this.params.length)} is not a live f32 tensor`,
        );
        seen.add(p);
        this.params.push(p);
      }
    this.paramSteps = this.params.map(() => 0);
    this.slots = this.params.map(() => null);
  }

  private label(p: Tensor, index: number): string {
    return `${index}${p.name ? ` (${p.name})` : ''} ${shapeStr(p.shape)}`;
  }

  /** Names of the state tensors each parameter gets under the given hyperparameters. */
  protected abstract slotNames(hyper: Record<string, number>): readonly string[];
  protected abstract get hyper(): Record<string, number>;
  /** Throws (naming the optimizer) when the hyperparameters are invalid. */
  protected abstract checkHyper(hyper: Record<string, number>): void;
  protected abstract setHyper(hyper: Record<string, number>): void;
  /** Applies one update to p in place; step counts this parameter's updates including this one. */
  protected abstract update(p: Tensor, g: Tensor, slots: Tensor[], lr: number, weightDecay: number, step: number): void;

  /**
   * Updates every parameter that has a gradient (those with grad === null are skipped and keep their state).
   * lrOverride (e.g. from a schedule) replaces the base lr for this step; groups with their own lr keep their ratio
   * to the base lr.
   */
  step(lrOverride?: number): void {
    const op = `${this.op}.step`;
    if (lrOverride !== undefined) checkRate(lrOverride >= 0, op, 'learning rate', lrOverride);
    // Everything is checked before anything changes, so a bad gradient leaves no half-applied step.
    const work: { i: number; p: Tensor; g: Tensor; lr: number; weightDecay: number }[] = [];
    let index = 0;
    for (const group of this.groups) {
      const lr = this.groupLr(group, lrOverride, op);
      for (const p of group.params) {
        const i = index++;
        const g = p.grad;
        if (!g) continue;
        check(
          !g.disposed && g.dtype === 'f32' && g.numel === p.numel,
          op,
          () => `gradient ${shapeStr(g.shape)} ${g.dtype} does not fit parameter ${this.label(p, i)}`,
        );
        work.push({ i, p, g, lr, weightDecay: group.weightDecay });
      }
    }
    const names = this.slotNames(this.hyper);
    this.steps++;
    for (const { i, p, g, lr, weightDecay } of work) {
      const slots = (this.slots[i] ??= names.map(() => keep(zeros(p.shape))));
      this.update(p, g, slots, lr, weightDecay, ++this.paramSteps[i]);
    }
  }

  private groupLr(group: OptimizerGroup, lrOverride: number | undefined, op: string): number {
    if (lrOverride === undefined || group.lr === this.lr) return lrOverride ?? group.lr;
    check(this.lr > 0, op, () => 'cannot scale a group lr against a base lr of 0');
    return (lrOverride * group.lr) / this.lr;
  }

  /** Releases every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** The full state. Tensors are the live state, not copies: serialise them before the next step. */
  stateDict(): OptimizerStateDict {
    const tensors = new Map<string, Tensor>();
    const names = this.slotNames(this.hyper);
    this.slots.forEach((slots, i) => {
      for (const [s, t] of (slots ?? []).entries()) tensors.set(`${i}.${names[s]}`, t);
    });
    return {
      meta: {
        kind: this.op,
        steps: this.steps,
        hyper: { ...this.hyper },
        lr: this.lr,
        groups: this.groups.map((g) => ({ lr: g.lr, weightDecay: g.weightDecay, size: g.params.length })),
        paramSteps: [...this.paramSteps],
      },
      tensors,
    };
  }

  /**
   * Restores hyperparameters, step counts and moments (copied in) from a state dict of an optimizer over parameters
   * of the same shapes in the same order. Every problem is reported in one error, and then nothing is changed.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const { meta, tensors } = sd;
    const problems: string[] = [];
    if (meta.kind !== this.op) problems.push(`state dict is for ${meta.kind}, not ${this.op}`);
    if (!Number.isInteger(meta.steps) || meta.steps < 0) problems.push(`invalid step count ${meta.steps}`);
    const rates = [meta.lr, ...meta.groups.flatMap((g) => [g.lr, g.weightDecay])];
    if (!rates.every((r) => Number.isFinite(r) && r >= 0)) problems.push('invalid learning rate or weight decay');
    try {
      this.checkHyper(meta.hyper);
    } catch (err) {
      problems.push((err as Error).message);
    }
    const sizes = this.groups.map((g) => g.params.length);
    const savedSizes = meta.groups.map((g) => g.size);
    if (sizes.join() !== savedSizes.join())
      problems.push(`group sizes [${savedSizes.join(', ')}] in the state dict, [${sizes.join(', ')}] here`);
    if (meta.paramSteps.length !== this.params.length)
      problems.push(`${meta.paramSteps.length} parameters in the state dict, ${this.params.length} here`);
    const expected = new Set<string>();
    const names = this.slotNames(meta.hyper);
    this.params.forEach((p, i) => {
      const steps = meta.paramSteps[i] ?? 0;
      if (!Number.isInteger(steps) || steps < 0) problems.push(`parameter ${i}: invalid step count ${steps}`);
      if (steps <= 0) return;
      for (const name of names) {
        const key = `${i}.${name}`;
        expected.add(key);
        const t = tensors.get(key);
        if (!t) problems.push(`missing key ${key}`);
        else if (t.disposed) problems.push(`${key}: tensor was released`);
        else if (t.dtype !== 'f32' || t.shape.join() !== p.shape.join())
          problems.push(`${key}: ${shapeStr(t.shape)} ${t.dtype} does not fit parameter ${this.label(p, i)}`);
      }
    });
    for (const key of tensors.keys()) if (!expected.has(key)) problems.push(`unexpected key ${key}`);
    check(
      problems.length === 0,
      `${this.op}.loadStateDict`,
      () => `${problems.length} problem(s), nothing was loaded:\n  ${problems.join('\n  ')}`,
    );
    const previousNames = this.slotNames(this.hyper);
    this.setHyper(meta.hyper);
    this.lr = meta.lr;
    meta.groups.forEach((g, gi) => {
      this.groups[gi].lr = g.lr;
      this.groups[gi].weightDecay = g.weightDecay;
    });
    this.steps = meta.steps;
    this.params.forEach((p, i) => {
      let slots = this.slots[i];
      if (slots && (meta.paramSteps[i] === 0 || previousNames.join() !== names.join())) {
        for (const t of slots) t.dispose();
        slots = null;
      }
      if (meta.paramSteps[i] > 0) {
        slots ??= names.map(() => keep(Tensor.empty(p.shape)));
        names.forEach((name, s) => {
          const src = tensors.get(`${i}.${name}`)!;
          if (src !== slots![s]) slots![s].f32.set(src.f32);
        });
      }
      this.slots[i] = slots;
      this.paramSteps[i] = meta.paramSteps[i];
    });
  }

  /** Releases the state tensors; the optimizer starts afresh if stepped again. */
  dispose(): void {
    for (const slots of this.slots) for (const t of slots ?? []) t.dispose();
    this.slots = this.params.map(() => null);
    this.paramSteps = this.params.map(() => 0);
    this.steps = 0;
  }
}

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** torch.optim.AdamW: decoupled weight decay (p -= lr·wd·p), then the bias-corrected Adam update. */
export class AdamW extends Optimizer {
  private betas: [number, number];
  private eps: number;

  constructor(params: Tensor[] | ParamGroup[], opts: AdamWOptions) {
    super('AdamW', params, opts.lr, opts.weightDecay ?? 0.01);
    this.betas = [...(opts.betas ?? [0.9, 0.999])];
    this.eps = opts.eps ?? 1e-8;
    this.checkHyper(this.hyper);
  }

  protected checkHyper(h: Record<string, number>): void {
    checkRate(h.beta1 >= 0 && h.beta1 < 1, this.op, 'beta1', h.beta1);
    checkRate(h.beta2 >= 0 && h.beta2 < 1, this.op, 'beta2', h.beta2);
    checkRate(h.eps >= 0, this.op, 'eps', h.eps);
  }

  protected slotNames(): readonly string[] {
    return ['exp_avg', 'exp_avg_sq'];
  }

  protected get hyper(): Record<string, number> {
    return { beta1: this.betas[0], beta2: this.betas[1], eps: this.eps };
  }

  protected setHyper(h: Record<string, number>): void {
    this.betas = [h.beta1, h.beta2];
    this.eps = h.eps;
  }

  protected update(p: Tensor, g: Tensor, [m, v]: Tensor[], lr: number, wd: number, step: number): void {
    native.adamwStep(p.f32, g.f32, m.f32, v.f32, lr, this.betas[0], this.betas[1], this.eps, wd, step);
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

/** torch.optim.SGD (no dampening, no Nesterov): L2 weight decay added to the gradient, optional momentum. */
export class SGD extends Optimizer {
  private momentum: number;

  constructor(params: Tensor[] | ParamGroup[], opts: SGDOptions) {
    super('SGD', params, opts.lr, opts.weightDecay ?? 0);
    this.momentum = opts.momentum ?? 0;
    this.checkHyper(this.hyper);
  }

  protected checkHyper(h: Record<string, number>): void {
    checkRate(h.momentum >= 0, this.op, 'momentum', h.momentum);
  }

  protected slotNames(hyper: Record<string, number>): readonly string[] {
    return hyper.momentum !== 0 ? ['momentum_buffer'] : [];
  }

  protected get hyper(): Record<string, number> {
    return { momentum: this.momentum };
  }

  protected setHyper(h: Record<string, number>): void {
    this.momentum = h.momentum;
  }

  protected update(p: Tensor, g: Tensor, slots: Tensor[], lr: number, wd: number, step: number): void {
    native.sgdStep(p.f32, g.f32, slots[0]?.f32 ?? null, lr, this.momentum, wd, step === 1);
  }
}
