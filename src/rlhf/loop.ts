// The epoch loop shared by the SFT and reward-model trainers: shuffled batches, AdamW with warmup + cosine decay,
// gradient clipping, metrics.jsonl, a progress bar, validation after each epoch, and checkpoints for exact resume
// (model, optimizer moments, data order and position, the data and dropout generators).
import { join } from 'node:path';
import { AdamW, clipGradNorm, cosineWithWarmup, type Module, type OptimizerStateDict } from '../nn/index.js';
import { backward, type Rng, type Tensor, tidy } from '../tensor/index.js';
import { listCheckpoints, loadLatestCheckpoint, saveCheckpoint } from '../train/checkpoint.js';
import { type Metrics, MetricsLog } from '../train/metrics.js';
import { Progress } from '../train/progress.js';
import { shuffled } from './data.js';

/** Optimization settings common to both trainers. */
/** What every epoch-based trainer (SFT, reward model) is given besides its own config. */
export interface TrainerRun {
  /** The model folder training starts from. */
  modelDir: string;
  dataFile: string;
  outDir: string;
  /** Held-out data; without it, the config's valFraction of the data is held out. */
  valFile?: string;
  resume?: boolean;
  skipBad?: boolean;
  signal?: AbortSignal;
  onStep?: (step: number, metrics: Metrics) => void;
  /** Status lines (default: stderr). */
  log?: (line: string) => void;
}

export interface LoopConfig {
  epochs: number;
  /** Examples per optimizer step (demonstrations, or prompts with all their responses). */
  batchSize: number;
  lr: number;
  /** Share of all steps spent warming up linearly from 0. */
  warmupRatio: number;
  /** Cosine decay floor as a share of lr. */
  minLrRatio: number;
  weightDecay: number;
  /** Gradient-norm clip (0: none). */
  maxGradNorm: number;
  /** Also checkpoint every this many steps (0: only at the end of each epoch). */
  saveEvery: number;
  seed: number;
}

export interface LoopHooks<E> {
  stage: string;
  outDir: string;
  model: Module;
  dropoutRng: Rng;
  dataRng: Rng;
  train: E[];
  /** Loss of one batch (called with gradients on, inside a tidy scope) and extra metrics to log. */
  loss(batch: E[]): { loss: Tensor; metrics?: Metrics };
  /** Validation after each epoch, with the model in eval mode; returns metrics to log. */
  validate(epoch: number): Metrics;
  /** After validation (e.g. keep the best model); runs before that epoch's checkpoint. */
  afterEpoch?(epoch: number, val: Metrics): void;
  /** Trainer state that must survive a resume (e.g. the best epoch so far). */
  state?: { get(): Record<string, unknown>; set(s: Record<string, unknown>): void };
  resume?: boolean;
  /** Stops the loop after the current step, without a checkpoint (as a kill would). */
  signal?: AbortSignal;
  onStep?(step: number, metrics: Metrics): void;
}

export interface LoopResult {
  steps: number;
  aborted: boolean;
}

export function checkLoopConfig(c: LoopConfig, source: string): void {
  const bad = (field: string, want: string) => {
    throw new Error(`${source}: field "${field}" must be ${want}, got ${JSON.stringify((c as never)[field])}`);
  };
  if (!Number.isInteger(c.epochs) || c.epochs < 1) bad('epochs', 'an integer >= 1');
  if (!Number.isInteger(c.batchSize) || c.batchSize < 1) bad('batchSize', 'an integer >= 1');
  if (!(c.lr >= 0)) bad('lr', '>= 0');
  if (!(c.warmupRatio >= 0 && c.warmupRatio <= 1)) bad('warmupRatio', 'in [0, 1]');
  if (!(c.minLrRatio >= 0 && c.minLrRatio <= 1)) bad('minLrRatio', 'in [0, 1]');
  if (!(c.weightDecay >= 0)) bad('weightDecay', '>= 0');
  if (!(c.maxGradNorm >= 0)) bad('maxGradNorm', '>= 0');
  if (!Number.isInteger(c.saveEvery) || c.saveEvery < 0) bad('saveEvery', 'an integer >= 0');
  if (!Number.isInteger(c.seed)) bad('seed', 'an integer');
}

interface Position {
  epoch: number;
  /** Next batch within the epoch. */
  batch: number;
  /** This epoch's example order (null before the epoch's shuffle). */
  order: number[] | null;
}

export function runLoop<E>(cfg: LoopConfig, h: LoopHooks<E>): LoopResult {
  const n = h.train.length;
  const perEpoch = Math.ceil(n / cfg.batchSize);
  const totalSteps = perEpoch * cfg.epochs;
  const schedule = {
    lr: cfg.lr,
    warmupSteps: Math.round(cfg.warmupRatio * totalSteps),
    totalSteps,
    minLr: cfg.lr * cfg.minLrRatio,
  };
  // Only what trains (everything, or with LoRA the adapters and heads) gets optimizer state and is checkpointed.
  const trainable = h.model.trainableParameters();
  const opt = new AdamW(trainable, { lr: cfg.lr, weightDecay: cfg.weightDecay });
  const root = join(h.outDir, 'checkpoints');
  const log = new MetricsLog(join(h.outDir, 'metrics.jsonl'), h.stage);
  let step = 0;
  let pos: Position = { epoch: 0, batch: 0, order: null };

  const saved = h.resume ? loadLatestCheckpoint(root, ['model', 'optimizer']) : null;
  if (!h.resume && listCheckpoints(root).length > 0)
    throw new Error(
      `${root}: holds checkpoints of an earlier run; pass --resume to continue it or choose another --out`,
    );
  if (saved) {
    const s = saved.state as {
      position: Position;
      rng: { data: number[]; dropout: number[] };
      optimizer: OptimizerStateDict['meta'];
      trainer: Record<string, unknown>;
    };
    const missing = h.model.namedTrainableParameters().filter(([name]) => !saved.tensors.model.has(name));
    if (missing.length > 0)
      throw new Error(
        `${root}: the checkpoint lacks ${missing.length} trainable tensor(s) (${missing
          .slice(0, 3)
          .map(([n]) => n)
          .join(', ')}${missing.length > 3 ? ', …' : ''}): it was saved by another setup (LoRA or not)`,
      );
    h.model.loadStateDict(saved.tensors.model, { strict: false });
    opt.loadStateDict({ meta: s.optimizer, tensors: saved.tensors.optimizer });
    for (const t of [...saved.tensors.model.values(), ...saved.tensors.optimizer.values()]) t.dispose();
    h.dataRng.setState(s.rng.data);
    h.dropoutRng.setState(s.rng.dropout);
    h.state?.set(s.trainer);
    step = saved.step;
    pos = s.position;
  }
  log.truncateFrom(step + 1);

  const checkpoint = () =>
    saveCheckpoint(root, {
      step,
      state: {
        position: pos,
        rng: { data: h.dataRng.getState(), dropout: h.dropoutRng.getState() },
        optimizer: opt.stateDict().meta,
        trainer: h.state?.get() ?? {},
      },
      tensors: { model: new Map(h.model.namedTrainableParameters()), optimizer: opt.stateDict().tensors },
    });

  const progress = new Progress(h.stage, totalSteps);
  progress.update(step);
  try {
    while (pos.epoch < cfg.epochs) {
      pos.order ??= shuffled(n, h.dataRng);
      h.model.train();
      while (pos.batch < perEpoch) {
        const picked = pos.order
          .slice(pos.batch * cfg.batchSize, (pos.batch + 1) * cfg.batchSize)
          .map((i) => h.train[i]);
        const lr = cosineWithWarmup(step, schedule);
        const metrics: Metrics = tidy(() => {
          const { loss, metrics: extra } = h.loss(picked);
          const value = loss.item();
          backward(loss);
          return { 'train/loss': value, ...extra };
        });
        if (cfg.maxGradNorm > 0) metrics['train/grad_norm'] = clipGradNorm(trainable, cfg.maxGradNorm);
        opt.step(lr);
        h.model.zeroGrad();
        step++;
        pos.batch++;
        const logged = { ...metrics, lr, epoch: pos.epoch + pos.batch / perEpoch };
        log.write(step, logged);
        progress.update(step, `epoch ${pos.epoch + 1}/${cfg.epochs} loss ${Number(metrics['train/loss']).toFixed(4)}`);
        if (cfg.saveEvery > 0 && step % cfg.saveEvery === 0 && pos.batch < perEpoch) checkpoint();
        h.onStep?.(step, logged);
        if (h.signal?.aborted) return { steps: step, aborted: true };
      }
      h.model.eval();
      const val = h.validate(pos.epoch);
      if (Object.keys(val).length > 0) log.write(step, { ...val, epoch: pos.epoch + 1 });
      h.afterEpoch?.(pos.epoch, val);
      pos = { epoch: pos.epoch + 1, batch: 0, order: null };
      checkpoint();
    }
  } finally {
    progress.stop();
    h.model.eval();
    opt.dispose();
  }
  return { steps: step, aborted: false };
}
