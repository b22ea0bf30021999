// Direct Preference Optimization (Rafailov et al. 2023): the policy is trained on preference pairs directly, its
// implicit reward being β·(log π(y|x) − log π_ref(y|x)). Losses: sigmoid −log σ(β·margin) with label smoothing ε
// (conservative DPO: the label is wrong with probability ε), or IPO (Azar et al. 2023) (margin − 1/2β)² on
// per-token mean log-probs, as TRL does. The reference's log-probs are computed once before training, so no
// reference model is held in memory while the policy trains.
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { checkModelFolder, loadModelFolder } from '../models/index.js';
import { applyLora, loraConfigOf } from '../models/lora.js';
import { autocast, Rng } from '../tensor/index.js';
import { Formatter } from '../tokenizer/index.js';
import { EpochBatches, splitValidation } from '../train/batches.js';
import {
  baseFields,
  ConfigSpec,
  dropoutField,
  loraFields,
  promptFormatField,
  valFractionField,
} from '../train/config.js';
import { openRun, runTrainer, type StepOutput, type TrainedPart, type Trainer } from '../train/loop.js';
import { METRIC, type Metrics } from '../train/metrics.js';
import {
  type ComparisonFormat,
  loadCausalLM,
  readComparisons,
  saveOutput,
  startingPromptFormat,
  type TrainerRun,
} from './data.js';
import { cacheReferenceLogps, DPO_LOSS_TYPES, type DpoLossOptions, dpoBatch, evaluateDpo } from './dpo_loss.js';
import { type DpoPair, encodePairs } from './preferences.js';

export {
  cacheReferenceLogps,
  DPO_LOSS_TYPES,
  type DpoLossOptions,
  type DpoLossResult,
  type DpoLossType,
  dpoBatch,
  dpoLoss,
  dpoMetrics,
  evaluateDpo,
  sequenceLogps,
} from './dpo_loss.js';

/** TRL's DPO defaults (β 0.1, lr 1e-6, sigmoid loss, dropout off). */
export const dpoSpec = new ConfigSpec('dpo', {
  epochs: Type.Integer({ minimum: 1, default: 1, description: 'passes over the pairs' }),
  beta: Type.Number({
    exclusiveMinimum: 0,
    default: 0.1,
    description: 'β: how far the policy may move from the reference',
  }),
  lossType: Type.Union(
    DPO_LOSS_TYPES.map((t) => Type.Literal(t)),
    { default: 'sigmoid', description: 'sigmoid (DPO) or ipo' },
  ),
  labelSmoothing: Type.Number({
    minimum: 0,
    exclusiveMaximum: 0.5,
    default: 0,
    description: 'ε of conservative DPO: the chance a label is flipped (sigmoid only)',
  }),
  dropout: dropoutField(0),
  valFraction: valFractionField('comparison lines'),
  promptFormat: promptFormatField,
  ...loraFields(),
  ...baseFields({ batchSize: 8, lr: 1e-6, warmupRatio: 0.1, minLrRatio: 0 }),
});

export type DpoConfig = typeof dpoSpec.defaults;
export const dpoDefaults: DpoConfig = dpoSpec.defaults;

export function checkDpoConfig(c: DpoConfig, source = 'dpo config'): void {
  dpoSpec.check(c, source);
  loraConfigOf(c, source);
  if (c.labelSmoothing > 0 && c.lossType !== 'sigmoid')
    throw new Error(
      `${source}: field "labelSmoothing" must be 0 with lossType "${c.lossType}" (label smoothing is for the sigmoid loss), got ${c.labelSmoothing}`,
    );
}

// ---- training ----

export interface DpoOptions extends TrainerRun {
  config: DpoConfig;
  format?: ComparisonFormat;
  /** The reference model folder (default: modelDir, the model training starts from). */
  refModelDir?: string;
}

export interface DpoResult {
  steps: number;
  aborted: boolean;
  trainPairs: number;
  valPairs: number;
  skipped: string[];
  /** The last held-out evaluation (empty without validation data). */
  eval: Metrics;
}

/** Everything a run needs, checked before training: model folders, data, tokenization. */
function prepareDpo(opts: DpoOptions) {
  const cfg = opts.config;
  const skipBad = { skipBad: opts.skipBad };
  if (opts.refModelDir) checkModelFolder(opts.refModelDir, 'causal');
  const format = opts.format ?? 'auto';
  const data = readComparisons(opts.dataFile, format, skipBad);
  const valData = opts.valFile ? readComparisons(opts.valFile, format, skipBad) : null;
  const { model, tokenizer, dropoutRng, note } = loadCausalLM(opts.modelDir, {
    base: opts.base,
    residPdrop: cfg.dropout,
    seed: cfg.seed,
  });
  // Adapters start at zero (B = 0), so the reference's log-probs taken from this model are the base model's.
  const lora = loraConfigOf(cfg);
  if (lora) applyLora(model, lora, { seed: cfg.seed, frozenDtype: cfg.bf16 ? 'bf16' : 'f32' });
  const fmt = new Formatter(tokenizer, opts.modelDir, cfg.promptFormat);
  const context = model.maxPositions;
  // The split is by line, so no prompt's pairs are in both.
  const lines = valData
    ? { train: data.records, val: valData.records }
    : splitValidation(data.records, cfg.valFraction, cfg.seed);
  const train = encodePairs(lines.train, fmt, context, skipBad);
  const val = lines.val.length > 0 ? encodePairs(lines.val, fmt, context, skipBad) : null;
  const skipped = [data, valData, train, val]
    .flatMap((r) => r?.skipped ?? [])
    .map((e) => `${e.file}:${e.line}: ${e.message}`);
  return { model, tokenizer, dropoutRng, note, fmt, train: train.records, val: val?.records ?? [], skipped };
}

type Prepared = ReturnType<typeof prepareDpo>;

/** DPO on the loop: one batch of pairs per step; held-out metrics at each epoch's end. */
class DpoTrainer implements Trainer<DpoPair[]> {
  readonly stage = 'dpo';
  readonly parts: TrainedPart[];
  readonly rngs: Record<string, Rng>;
  readonly data: EpochBatches<DpoPair>;
  readonly totalSteps: number;
  readonly totalUpdates: number;
  lastEval: Metrics = {};

  constructor(
    private readonly p: Prepared,
    private readonly cfg: DpoConfig,
    private readonly lossOpts: DpoLossOptions,
  ) {
    this.parts = [{ name: 'model', module: p.model, lr: cfg.lr, gradNormMetric: METRIC.gradNorm }];
    const dataRng = new Rng(cfg.seed + 1);
    this.rngs = { data: dataRng, dropout: p.dropoutRng };
    this.data = new EpochBatches(p.train, cfg.batchSize, cfg.epochs, dataRng);
    this.totalSteps = this.totalUpdates = this.data.totalSteps;
    p.model.train();
  }

  *updates(): Iterable<DpoPair[][]> {
    yield [this.data.next()];
  }

  step(batch: DpoPair[]): StepOutput {
    const tokens = batch.reduce((n, b) => n + b.chosen.length + b.rejected.length, 0);
    return { ...dpoBatch(this.p.model, batch, this.p.fmt.padId, this.lossOpts), tokens };
  }

  endStep(): Metrics {
    return { [METRIC.epoch]: this.data.progress };
  }

  checkpointDue(): boolean {
    return this.data.epochEnded;
  }

  evaluate(): Metrics | null {
    if (!this.data.epochEnded || this.p.val.length === 0) return null;
    this.p.model.eval();
    this.lastEval = evaluateDpo(this.p.model, this.p.val, this.cfg.batchSize, this.p.fmt.padId, this.lossOpts);
    this.p.model.train();
    return this.lastEval;
  }

  saveState() {
    return { state: { position: this.data.position, eval: this.lastEval } };
  }

  loadState(s: Record<string, unknown>): void {
    this.data.position = s.position as EpochBatches<DpoPair>['position'];
    this.lastEval = s.eval as Metrics;
  }
}

export function trainDpo(opts: DpoOptions): DpoResult {
  checkDpoConfig(opts.config);
  const promptFormat = startingPromptFormat(opts.modelDir, opts.base, opts.config.promptFormat);
  const cfg = { ...opts.config, promptFormat };
  const say = opts.log ?? ((line: string) => console.error(line));
  const config = {
    ...cfg,
    model: opts.modelDir,
    ref: opts.refModelDir ?? opts.modelDir,
    data: opts.dataFile,
    val: opts.valFile ?? null,
  };
  const runOpts = { ...opts, config, log: say };
  // Refused before anything is read or written (dpo_config.json of the earlier run included).
  const resuming = openRun('dpo', runOpts);
  const p = prepareDpo({ ...opts, config: cfg });
  if (p.note) say(p.note);
  for (const s of p.skipped) say(`skipped ${s}`);
  if (p.skipped.length > 0) say(`skipped ${p.skipped.length} bad line(s)`);
  say(`dpo: ${p.train.length} training and ${p.val.length} validation pairs`);
  const lossOpts: DpoLossOptions = { beta: cfg.beta, lossType: cfg.lossType, labelSmoothing: cfg.labelSmoothing };
  const refOpts = { batchSize: cfg.batchSize, padId: p.fmt.padId, average: cfg.lossType === 'ipo' };
  const everyPair = [...p.train, ...p.val];
  if (opts.refModelDir || cfg.bf16) {
    // A reference of its own (--ref), or with --bf16 the starting model again held frozen in bf16 (adapters start
    // at zero, so it is the LoRA model's base too); freed once every pair is scored.
    const refDir = opts.refModelDir ?? opts.modelDir;
    const ref = loadModelFolder(refDir, {
      dtype: cfg.bf16 ? 'bf16' : 'f32',
      base: opts.refModelDir ? undefined : opts.base,
    });
    if (ref.config.vocabSize !== p.model.config.vocabSize)
      throw new Error(
        `${join(refDir, 'config.json')}: vocabulary of ${ref.config.vocabSize}, the policy's is ` +
          `${p.model.config.vocabSize}; the reference must share the policy's tokenizer`,
      );
    autocast(cfg.bf16 ? 'bf16' : 'f32', () => cacheReferenceLogps(ref, everyPair, refOpts));
    for (const t of ref.parameters()) t.dispose();
  } else {
    // The starting weights are the reference: score every pair once before the first step changes them.
    cacheReferenceLogps(p.model, everyPair, refOpts);
  }
  const trainer = new DpoTrainer(p, cfg, lossOpts);
  const result = runTrainer(trainer, resuming, runOpts);
  p.model.eval();
  const base = {
    steps: result.steps,
    aborted: result.stopped,
    trainPairs: p.train.length,
    valPairs: p.val.length,
    skipped: p.skipped,
    eval: trainer.lastEval,
  };
  if (result.stopped) return base;
  saveOutput(p.model, p.tokenizer, opts.outDir, { baseModel: opts.modelDir, merge: cfg.merge, dtype: cfg.saveDtype });
  say(`dpo: saved to ${opts.outDir}`);
  return base;
}
