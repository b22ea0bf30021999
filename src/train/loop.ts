// THE training loop. Every trainer (pretrain, SFT, reward model, PPO, ...) is a small module on it that says what
// to train, produces its batches and computes a batch's loss; the loop owns what they all share: AdamW (no weight
// decay on vectors), the LR schedule (warmup + cosine or constant), gradient clipping and the non-finite guard, bf16
// autocast, tok/s, the progress bar, metrics.jsonl, SIGINT/SIGTERM (checkpoint, then stop), the resume guard and
// atomic checkpoints for exact resume.
//
// A step (the unit of logging, checkpoints and --resume) is one or more optimizer updates, each adding up the
// gradients of one or more batches: SFT's step is one update of one batch; a PPO step is a rollout, then ppoEpochs ×
// minibatches updates.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdamW, clipGradNorm, cosineWithWarmup, type Module, type OptimizerStateDict } from '../nn/index.js';
import { autocast, backward, native, type Rng, type Tensor, tidy } from '../tensor/index.js';
import { cleanStaleCheckpoints, listCheckpoints, loadLatestCheckpoint, saveCheckpoint } from './checkpoint.js';
import { type BaseConfig, diffConfigs, printConfig, saveRunConfig } from './config.js';
import { METRIC, type Metrics, MetricsLog } from './metrics.js';
import { Progress } from './progress.js';

/** A module trained by its own AdamW (checkpointed as `<name>` and `<name>_optim`). */
export interface TrainedPart {
  name: string;
  module: Module;
  /** Peak learning rate of this part (the schedule scales it). */
  lr: number;
  /** Metric of its gradient norm (before clipping). */
  gradNormMetric: string;
  /** The named parameters to train (default: all of the module's), e.g. only adapters on a frozen base. */
  parameters?: [string, Tensor][];
}

export interface StepOutput {
  /** The batch's loss; the loop reads it, then back-propagates it (inside a tidy scope and autocast). */
  loss: Tensor;
  metrics?: Metrics;
  /** Tokens trained on, for tok/s. */
  tokens?: number;
}

/** What a trainer module gives the loop. B is its batch type. */
export interface Trainer<B> {
  readonly stage: string;
  /** Steps of the whole run. */
  readonly totalSteps: number;
  /** Optimizer updates of the whole run (the schedule's length). */
  readonly totalUpdates: number;
  readonly parts: TrainedPart[];
  /** Random generators a checkpoint keeps, by name (data order, dropout, sampling). */
  readonly rngs: Record<string, Rng>;
  /** Work before a step's updates that may wait (e.g. an asynchronous reward); runTrainerAsync awaits it. */
  beforeStep?(step: number): Promise<void> | void;
  /** The updates of a step, each a list of batches whose gradients add up before the optimizer steps. */
  updates(step: number): Iterable<B[]>;
  /** One batch's loss (gradients on). */
  step(batch: B): StepOutput;
  /** After every optimizer update (e.g. a moving average of the weights). */
  afterUpdate?(): void;
  /** Metrics of a finished step besides the loop's (e.g. the rollout's), and what else the step ends with. */
  endStep?(step: number, metrics: Metrics): Metrics;
  /** Evaluation after `step` (0: before training) when due, else null; merged into that step's record. */
  evaluate?(step: number): Metrics | null;
  /** A checkpoint besides every saveEvery steps (e.g. at the end of an epoch). */
  checkpointDue?(step: number): boolean;
  /** The progress bar's status after a step. */
  status?(metrics: Metrics): string;
  /** JSON state and tensor groups an exact resume needs besides parts, optimizers and generators. */
  saveState?(): { state: Record<string, unknown>; tensors?: Record<string, Map<string, Tensor>> };
  /** Restores saveState's output (tensor groups named by extraTensorGroups). */
  loadState?(state: Record<string, unknown>, tensors: Record<string, Map<string, Tensor>>): void;
  readonly extraTensorGroups?: string[];
  /** After a resume restored everything (e.g. drop records of later steps from the trainer's own files). */
  onResume?(step: number): void;
}

export interface RunOptions {
  outDir: string;
  /** The config saved as `<stage>_config.json`, printed, and compared on --resume. */
  config: BaseConfig & Record<string, unknown>;
  /** Continue from the newest checkpoint (a fresh start when there is none). */
  resume?: boolean;
  /** Resume even though the config differs from the saved one. */
  forceConfig?: boolean;
  /** Fields that may change on resume without changing the run (e.g. how often to save). */
  resumableFields?: string[];
  /** The trainer's defaults: a field an older run's saved config lacks is unchanged on resume when it has them. */
  defaults?: Record<string, unknown>;
  /** Stops after the current step, with a checkpoint (as SIGINT does). */
  signal?: AbortSignal;
  /** Stops (with a checkpoint) after this step. */
  stopAfter?: number;
  /** Checkpoint and stop on SIGINT / SIGTERM (the CLI). */
  handleSignals?: boolean;
  onStep?(step: number, metrics: Metrics): void;
  /** Status lines (default stderr). */
  log?: (line: string) => void;
  /** No config print at the start (the caller shows what it runs). */
  quiet?: boolean;
}

/** How a caller steers a trainer's run (resume, stop, what it is told): the trainers' options extend it. */
export type RunControls = Pick<
  RunOptions,
  'resume' | 'forceConfig' | 'signal' | 'handleSignals' | 'onStep' | 'log' | 'quiet'
>;

export interface RunResult {
  /** Steps completed. */
  steps: number;
  /** The step the run resumed after, or null. */
  resumedFrom: number | null;
  /** Stopped before totalSteps (a signal or stopAfter), with a checkpoint to resume from. */
  stopped: boolean;
}

/**
 * Checks the output folder before anything is written or loaded: an earlier run's checkpoints need --resume, and
 * a resume needs the same config (each changed field is named; --force-config overrides). Returns whether the run
 * resumes.
 */
export function openRun(
  stage: string,
  opts: Pick<RunOptions, 'outDir' | 'config' | 'resume' | 'forceConfig' | 'resumableFields' | 'defaults' | 'log'>,
): boolean {
  const root = join(opts.outDir, 'checkpoints');
  const say = opts.log ?? ((line: string) => console.error(line));
  const has = listCheckpoints(root).length > 0;
  if (has && !opts.resume)
    throw new Error(
      `${opts.outDir}: holds checkpoints of an earlier run; pass --resume to continue it or choose another --out`,
    );
  if (!has) {
    if (opts.resume) say(`${opts.outDir}: no checkpoint to resume from; starting afresh`);
    return false;
  }
  const path = join(opts.outDir, `${stage}_config.json`);
  if (!existsSync(path)) throw new Error(`${path}: not found; cannot check that --resume continues the same run`);
  const saved = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const changed = diffConfigs(saved, opts.config, opts.resumableFields ?? [], opts.defaults);
  if (changed.length > 0) {
    const list = changed.map((c) => `${c.field}: ${c.saved} → ${c.now}`).join('; ');
    if (!opts.forceConfig)
      throw new Error(
        `--resume: the config differs from ${path} (${list}); resume with the run's settings, or pass --force-config`,
      );
    say(`warning: --force-config: resuming with a config that differs from ${path} (${list})`);
  }
  return true;
}

const SIGTERM = 15;

function meansOf(values: Map<string, number[]>): Metrics {
  const out: Metrics = {};
  for (const [k, v] of values) out[k] = v.reduce((a, b) => a + b, 0) / v.length;
  return out;
}

/** Runs (or resumes) a trainer to its last step; see the top of this file. Call openRun first. */
export function runTrainer<B>(t: Trainer<B>, resuming: boolean, opts: RunOptions): RunResult {
  const run = steps(t, resuming, opts);
  for (let r = run.next(); ; r = run.next()) {
    if (r.done) return r.value;
    run.throw(new Error(`${t.stage}: beforeStep returned a promise; run this trainer with runTrainerAsync`));
  }
}

/** runTrainer for trainers whose beforeStep waits. */
export async function runTrainerAsync<B>(t: Trainer<B>, resuming: boolean, opts: RunOptions): Promise<RunResult> {
  const run = steps(t, resuming, opts);
  for (let r = run.next(); ; ) {
    if (r.done) return r.value;
    try {
      await r.value;
    } catch (e) {
      r = run.throw(e);
      continue;
    }
    r = run.next();
  }
}

// The loop itself, yielding where beforeStep returned a promise (the runner awaits it or refuses it).
function* steps<B>(t: Trainer<B>, resuming: boolean, opts: RunOptions): Generator<Promise<void>, RunResult> {
  const cfg = opts.config;
  const say = opts.log ?? ((line: string) => console.error(line));
  const root = join(opts.outDir, 'checkpoints');
  cleanStaleCheckpoints(root);
  if (!opts.quiet) printConfig(`${t.stage} config`, cfg);
  saveRunConfig(opts.outDir, `${t.stage}_config.json`, cfg);
  // Only what trains (everything, or with LoRA the adapters and heads) gets optimizer state and is checkpointed.
  const trained = t.parts.map((p) => p.parameters ?? p.module.namedTrainableParameters());
  const optimizers = t.parts.map((p, i) => {
    const named = trained[i];
    // No weight decay on biases, norms' gains and other vectors (as GPT-2, nanoGPT and TRL do).
    return new AdamW(
      [
        { params: named.filter(([, x]) => x.ndim >= 2).map(([, x]) => x) },
        { params: named.filter(([, x]) => x.ndim < 2).map(([, x]) => x), weightDecay: 0 },
      ].filter((g) => g.params.length > 0),
      { lr: p.lr, betas: [cfg.adamBeta1, cfg.adamBeta2], weightDecay: cfg.weightDecay },
    );
  });
  const log = new MetricsLog(join(opts.outDir, 'metrics.jsonl'), t.stage);
  let step = 0;
  if (resuming) {
    const groups = [...t.parts.flatMap((p) => [p.name, `${p.name}_optim`]), ...(t.extraTensorGroups ?? [])];
    const saved = loadLatestCheckpoint(root, groups)!;
    const s = saved.state as {
      rng: Record<string, number[]>;
      optimizers: Record<string, OptimizerStateDict['meta']>;
      trainer: Record<string, unknown>;
    };
    t.parts.forEach((p, i) => {
      const missing = p.module.namedTrainableParameters().filter(([name]) => !saved.tensors[p.name].has(name));
      if (missing.length > 0)
        throw new Error(
          `${root}: the checkpoint's ${p.name} lacks ${missing.length} trainable tensor(s) (${missing
            .slice(0, 3)
            .map(([n]) => n)
            .join(', ')}${missing.length > 3 ? ', …' : ''}): it was saved by another setup (LoRA or not)`,
        );
      p.module.loadStateDict(saved.tensors[p.name], { strict: false });
      optimizers[i].loadStateDict({ meta: s.optimizers[p.name], tensors: saved.tensors[`${p.name}_optim`] });
    });
    for (const [name, rng] of Object.entries(t.rngs)) rng.setState(s.rng[name]);
    t.loadState?.(s.trainer, saved.tensors);
    for (const group of Object.values(saved.tensors)) for (const x of group.values()) if (!x.disposed) x.dispose();
    step = saved.step;
    log.truncateFrom(step + 1);
    t.onResume?.(step);
    say(`${t.stage}: resuming after step ${step}`);
  } else log.truncateFrom(0);
  const resumedFrom = resuming ? step : null;

  const checkpoint = () => {
    const extra = t.saveState?.() ?? { state: {} };
    const tensors: Record<string, Map<string, Tensor>> = { ...extra.tensors };
    const metas: Record<string, OptimizerStateDict['meta']> = {};
    t.parts.forEach((p, i) => {
      const o = optimizers[i].stateDict();
      tensors[p.name] = new Map(p.module.namedTrainableParameters());
      tensors[`${p.name}_optim`] = o.tensors;
      metas[p.name] = o.meta;
    });
    const rng = Object.fromEntries(Object.entries(t.rngs).map(([k, r]) => [k, r.getState()]));
    saveCheckpoint(root, { step, state: { rng, optimizers: metas, trainer: extra.state }, tensors });
  };

  const lrOf = (part: TrainedPart, update: number) =>
    cfg.lrScheduler === 'constant'
      ? part.lr
      : cosineWithWarmup(update, {
          lr: part.lr,
          minLr: part.lr * cfg.minLrRatio,
          warmupSteps: Math.round(cfg.warmupRatio * t.totalUpdates),
          totalSteps: t.totalUpdates,
        });
  const dtype = cfg.bf16 ? 'bf16' : 'f32';
  const params = trained.map((named) => named.map(([, x]) => x));

  // A signal only sets a flag that is read between steps: Node's own listeners would wait for the event loop.
  if (opts.handleSignals) native.watchSignals();
  const signalled = () => {
    const sig = opts.handleSignals ? (native.pendingSignal() as number) : 0;
    if (sig === 0) return false;
    say(
      `\n${sig === SIGTERM ? 'SIGTERM' : 'SIGINT'}: stopping after step ${step} (writing a checkpoint; a second signal ends at once)`,
    );
    return true;
  };
  if (step === 0) {
    const initial = t.evaluate?.(0);
    if (initial) log.write(0, initial);
  }
  const progress = new Progress(step > 0 ? `${t.stage} (from step ${step})` : t.stage, t.totalSteps, undefined, step);
  progress.update(step);
  try {
    while (step < t.totalSteps) {
      const t0 = performance.now();
      const pending = t.beforeStep?.(step + 1);
      if (pending) yield pending;
      const values = new Map<string, number[]>();
      const note = (k: string, v: number | string) => {
        if (typeof v !== 'number') return;
        if (!values.has(k)) values.set(k, []);
        values.get(k)!.push(v);
      };
      let tokens = 0;
      let lr = 0;
      for (const batches of t.updates(step + 1)) {
        let loss = 0;
        for (const batch of batches)
          tidy(() =>
            autocast(dtype, () => {
              const out = t.step(batch);
              loss += out.loss.item();
              backward(out.loss);
              tokens += out.tokens ?? 0;
              for (const [k, v] of Object.entries(out.metrics ?? {})) note(k, v);
            }),
          );
        note(METRIC.trainLoss, loss);
        const update = optimizers[0].steps;
        t.parts.forEach((p, i) => {
          const norm = clipGradNorm(params[i], cfg.maxGradNorm > 0 ? cfg.maxGradNorm : Number.POSITIVE_INFINITY);
          if (!Number.isFinite(norm))
            throw new Error(
              `${t.stage} step ${step + 1}: the gradient norm of ${p.name} is ${norm}; lower --lr or set maxGradNorm (the last checkpoint is intact)`,
            );
          note(p.gradNormMetric, norm);
        });
        t.parts.forEach((p, i) => {
          const partLr = lrOf(p, update);
          if (i === 0) lr = partLr;
          optimizers[i].step(partLr);
          p.module.zeroGrad();
        });
        t.afterUpdate?.();
      }
      step++;
      const seconds = (performance.now() - t0) / 1000;
      let metrics: Metrics = { ...meansOf(values), [METRIC.lr]: lr };
      if (tokens > 0) metrics[METRIC.tokensPerSecond] = tokens / seconds;
      metrics = { ...metrics, ...t.endStep?.(step, metrics) };
      const evaluation = t.evaluate?.(step);
      if (evaluation) metrics = { ...metrics, ...evaluation };
      log.write(step, metrics);
      progress.update(step, t.status?.(metrics) ?? `loss ${Number(metrics[METRIC.trainLoss]).toFixed(4)}`);
      opts.onStep?.(step, metrics);
      const stopping = signalled() || opts.signal?.aborted === true || step === opts.stopAfter;
      if (
        step === t.totalSteps ||
        stopping ||
        (cfg.saveEvery > 0 && step % cfg.saveEvery === 0) ||
        t.checkpointDue?.(step)
      )
        checkpoint();
      if (stopping) break;
    }
  } finally {
    progress.stop();
    if (opts.handleSignals) native.unwatchSignals();
    for (const o of optimizers) o.dispose();
  }
  return { steps: step, resumedFrom, stopped: step < t.totalSteps };
}
