// Step 2 of InstructGPT (arXiv 2203.02155 §3.5, appendix C): the reward model. The SFT model with its LM head
// replaced by a scalar head, trained on rankings of K responses per prompt: every response of a prompt goes in the
// same batch and all C(K,2) pairs count, loss = −1/C(K,2) Σ_{w above l} log σ(r_w − r_l − margin). Afterwards the
// head's bias is set so that demonstrations score 0 on average.
import { Type } from '@sinclair/typebox';
import { padRight, ScalarModel, type ScoredSequence, scoreSequences } from '../models/index.js';
import { applyLora, loraConfigOf } from '../models/lora.js';
import { bestOf, orderedPairs, rankedItems } from '../store/ranking.js';
import { check, Rng, type Tensor } from '../tensor/index.js';
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
  encodeDemonstrations,
  encodeRankings,
  loadCausalLM,
  type RankingExample,
  readComparisons,
  readDemonstrations,
  saveOutput,
  startingPromptFormat,
  type TrainerRun,
} from './data.js';
import { batchRankingLoss, pairsCorrect, type RankingGroup } from './ranking_loss.js';

export {
  batchRankingLoss,
  negLogSigmoid,
  pairsCorrect,
  type RankingGroup,
  rankingLoss,
} from './ranking_loss.js';

export const rmSpec = new ConfigSpec('rm', {
  epochs: Type.Integer({ minimum: 1, default: 1, description: 'passes over the rankings' }),
  margin: Type.Number({ default: 0, description: 'required score gap between a better and a worse response' }),
  likelihood: Type.Number({
    minimum: 0,
    default: 0,
    description:
      "starting weight of the response's mean per-token log-likelihood (the model's own LM head) in the score, " +
      'trained with the rest; 0: the plain scalar head',
  }),
  dropout: dropoutField(0),
  valFraction: valFractionField('comparisons'),
  promptFormat: promptFormatField,
  ...loraFields(),
  ...baseFields({ batchSize: 8, lr: 9e-6, warmupRatio: 0.03, minLrRatio: 0.1 }),
});

export type RmConfig = typeof rmSpec.defaults;
export const rmDefaults: RmConfig = rmSpec.defaults;

export function checkRmConfig(c: RmConfig, source = 'rm config'): void {
  rmSpec.check(c, source);
  loraConfigOf(c, source);
}

// ---- evaluation and calibration ----

export interface RankingEval {
  loss: number;
  accuracy: number;
  /** Pairwise accuracy per labeler (rankings that name one). */
  perLabeler: Record<string, number>;
}

/** Held-out loss and pairwise accuracy, overall and per labeler. */
export function evaluateRankings(
  rm: ScalarModel,
  examples: RankingExample[],
  opts: { batchSize: number; padId: number; margin: number },
): RankingEval {
  const flat = examples.flatMap((e) => e.sequences.map((ids) => ({ ids, promptLength: e.promptLength })));
  const scores = scoreSequences(rm, flat, opts.batchSize * 4, opts.padId);
  const tally = new Map<string | null, { correct: number; pairs: number }>();
  const add1 = (key: string | null, c: { correct: number; pairs: number }) => {
    const t = tally.get(key) ?? { correct: 0, pairs: 0 };
    tally.set(key, { correct: t.correct + c.correct, pairs: t.pairs + c.pairs });
  };
  let loss = 0;
  let offset = 0;
  for (const e of examples) {
    const s = scores.slice(offset, offset + e.sequences.length);
    offset += e.sequences.length;
    const c = pairsCorrect(s, e.ranking);
    add1(null, c);
    if (e.labeler !== undefined) add1(e.labeler, c);
    let l = 0;
    for (const [w, worse] of orderedPairs(e.ranking)) {
      const x = s[w] - s[worse] - opts.margin;
      l += Math.log1p(Math.exp(-Math.abs(x))) - Math.min(x, 0);
    }
    loss += l / c.pairs;
  }
  const all = tally.get(null)!;
  const perLabeler: Record<string, number> = {};
  for (const [key, t] of tally) if (key !== null) perLabeler[key] = t.correct / t.pairs;
  return { loss: loss / examples.length, accuracy: all.correct / all.pairs, perLabeler };
}

/**
 * Shifts the head's bias so that the sequences (demonstrations: prompt + response + EOS) score 0 on average, which
 * keeps the reward centred for RL. Returns the mean score before the shift.
 */
export function calibrateBias(
  rm: ScalarModel,
  sequences: readonly ScoredSequence[],
  batchSize: number,
  padId: number,
): number {
  check(sequences.length > 0, 'calibrateBias', () => 'no sequences to calibrate on');
  const scores = scoreSequences(rm, sequences, batchSize, padId);
  let mean = 0;
  for (const s of scores) mean += s / scores.length;
  rm.score.bias!.f32[0] -= mean;
  return mean;
}

// ---- training ----

/** modelDir is the SFT model folder the reward model starts from. */
export interface RmOptions extends TrainerRun {
  config: RmConfig;
  format?: ComparisonFormat;
  /** Demonstrations the bias is calibrated on (default: the top-ranked / chosen training responses). */
  demosFile?: string;
}

export interface RmResult {
  steps: number;
  aborted: boolean;
  trainRankings: number;
  valRankings: number;
  skipped: string[];
  /** Held-out evaluation after training (null without validation data or when aborted). */
  val: RankingEval | null;
  /** Mean calibration-set score before the bias shift (null when aborted). */
  biasShift: number | null;
}

/** Everything a run needs, checked before training. */
function prepareRm(opts: RmOptions) {
  const cfg = opts.config;
  const skipBad = { skipBad: opts.skipBad };
  const data = readComparisons(opts.dataFile, opts.format, skipBad);
  const valData = opts.valFile ? readComparisons(opts.valFile, opts.format, skipBad) : null;
  const demos = opts.demosFile ? readDemonstrations(opts.demosFile, skipBad) : null;
  const {
    model: trunk,
    tokenizer,
    dropoutRng,
    note,
  } = loadCausalLM(opts.modelDir, {
    base: opts.base,
    residPdrop: cfg.dropout,
    seed: cfg.seed,
  });
  const rm = new ScalarModel(trunk, new Rng(cfg.seed), { likelihood: cfg.likelihood > 0 ? cfg.likelihood : null });
  const lora = loraConfigOf(cfg);
  if (lora) applyLora(rm, lora, { seed: cfg.seed, frozenDtype: cfg.bf16 ? 'bf16' : 'f32' }); // the score head trains whole beside the adapters
  const fmt = new Formatter(tokenizer, opts.modelDir, cfg.promptFormat);
  const context = trunk.maxPositions;
  const encoded = encodeRankings(data.records, fmt, context, skipBad);
  const encodedVal = valData ? encodeRankings(valData.records, fmt, context, skipBad) : null;
  const encodedDemos = demos ? encodeDemonstrations(demos.records, fmt, context, skipBad) : null;
  const split = encodedVal
    ? { train: encoded.records, val: encodedVal.records }
    : splitValidation(encoded.records, cfg.valFraction, cfg.seed);
  const calibration: ScoredSequence[] = encodedDemos
    ? encodedDemos.records
    : split.train.map((r) => ({ ids: r.sequences[bestOf(r.ranking)], promptLength: r.promptLength }));
  const skipped = [data, valData, demos, encoded, encodedVal, encodedDemos]
    .flatMap((r) => r?.skipped ?? [])
    .map((e) => `${e.file}:${e.line}: ${e.message}`);
  return { rm, tokenizer, dropoutRng, note, fmt, ...split, calibration, skipped };
}

/** The batch's loss and its pairwise accuracy (a metric, from the same forward pass). */
export function rmBatchLoss(
  rm: ScalarModel,
  batch: RankingExample[],
  padId: number,
  margin: number,
): { loss: Tensor; accuracy: number } {
  const groups: RankingGroup[] = [];
  const rows: number[][] = [];
  const responseStart: number[] = [];
  for (const e of batch) {
    groups.push({ offset: rows.length, ranking: e.ranking });
    rows.push(...e.sequences);
    for (const _ of e.sequences) responseStart.push(e.promptLength);
  }
  const { ids, mask, lengths } = padRight(rows, padId);
  const scores = rm.scoreAt(
    ids,
    lengths.map((n) => n - 1),
    { attentionMask: mask, responseStart },
  );
  const values = scores.f32;
  let correct = 0;
  let pairs = 0;
  for (const g of groups) {
    const c = pairsCorrect(values.subarray(g.offset, g.offset + rankedItems(g.ranking).length), g.ranking);
    correct += c.correct;
    pairs += c.pairs;
  }
  return { loss: batchRankingLoss(scores, groups, margin), accuracy: correct / pairs };
}

type Prepared = ReturnType<typeof prepareRm>;

/** The reward model on the loop: one batch of rankings per step; held-out evaluation at each epoch's end. */
class RmTrainer implements Trainer<RankingExample[]> {
  readonly stage = 'rm';
  readonly parts: TrainedPart[];
  readonly rngs: Record<string, Rng>;
  readonly data: EpochBatches<RankingExample>;
  readonly totalSteps: number;
  readonly totalUpdates: number;
  val: RankingEval | null = null;

  constructor(
    private readonly p: Prepared,
    private readonly cfg: RmConfig,
  ) {
    this.parts = [{ name: 'model', module: p.rm, lr: cfg.lr, gradNormMetric: METRIC.gradNorm }];
    const dataRng = new Rng(cfg.seed + 1);
    this.rngs = { data: dataRng, dropout: p.dropoutRng };
    this.data = new EpochBatches(p.train, cfg.batchSize, cfg.epochs, dataRng);
    this.totalSteps = this.totalUpdates = this.data.totalSteps;
    p.rm.train();
  }

  get evalOpts() {
    return { batchSize: this.cfg.batchSize, padId: this.p.fmt.padId, margin: this.cfg.margin };
  }

  *updates(): Iterable<RankingExample[][]> {
    yield [this.data.next()];
  }

  step(batch: RankingExample[]): StepOutput {
    const { loss, accuracy } = rmBatchLoss(this.p.rm, batch, this.p.fmt.padId, this.cfg.margin);
    const tokens = batch.reduce((n, e) => n + e.sequences.reduce((m, s) => m + s.length, 0), 0);
    return { loss, metrics: { [METRIC.trainAccuracy]: accuracy }, tokens };
  }

  endStep(): Metrics {
    return { [METRIC.epoch]: this.data.progress };
  }

  checkpointDue(): boolean {
    return this.data.epochEnded;
  }

  evaluate(): Metrics | null {
    if (!this.data.epochEnded || this.p.val.length === 0) return null;
    this.p.rm.eval();
    this.val = evaluateRankings(this.p.rm, this.p.val, this.evalOpts);
    this.p.rm.train();
    const m: Metrics = { [METRIC.evalLoss]: this.val.loss, [METRIC.evalAccuracy]: this.val.accuracy };
    for (const [labeler, acc] of Object.entries(this.val.perLabeler)) m[`${METRIC.evalAccuracy}/${labeler}`] = acc;
    return m;
  }

  saveState() {
    return { state: { position: this.data.position } };
  }

  loadState(s: Record<string, unknown>): void {
    this.data.position = s.position as EpochBatches<RankingExample>['position'];
  }
}

export function trainRewardModel(opts: RmOptions): RmResult {
  checkRmConfig(opts.config);
  const promptFormat = startingPromptFormat(opts.modelDir, opts.base, opts.config.promptFormat);
  const cfg = { ...opts.config, promptFormat };
  const say = opts.log ?? ((line: string) => console.error(line));
  const config = {
    ...cfg,
    model: opts.modelDir,
    data: opts.dataFile,
    val: opts.valFile ?? null,
    demos: opts.demosFile ?? null,
  };
  const runOpts = { ...opts, config, log: say, defaults: rmDefaults };
  const resuming = openRun('rm', runOpts);
  const p = prepareRm({ ...opts, config: cfg });
  if (p.note) say(p.note);
  for (const s of p.skipped) say(`skipped ${s}`);
  if (p.skipped.length > 0) say(`skipped ${p.skipped.length} bad line(s)`);
  say(`rm: ${p.train.length} training and ${p.val.length} validation rankings`);
  const trainer = new RmTrainer(p, cfg);
  const result = runTrainer(trainer, resuming, runOpts);
  p.rm.eval();
  const base = {
    steps: result.steps,
    aborted: result.stopped,
    trainRankings: p.train.length,
    valRankings: p.val.length,
    skipped: p.skipped,
  };
  if (base.aborted) return { ...base, val: null, biasShift: null };
  // A resumed run that had already finished skips the loop; its held-out numbers are measured again.
  const val = trainer.val ?? (p.val.length > 0 ? evaluateRankings(p.rm, p.val, trainer.evalOpts) : null);
  const biasShift = calibrateBias(p.rm, p.calibration, cfg.batchSize * 4, p.fmt.padId);
  saveOutput(p.rm, p.tokenizer, opts.outDir, { baseModel: opts.modelDir, merge: cfg.merge, dtype: cfg.saveDtype });
  say(`rm: mean calibration score ${biasShift.toFixed(4)} moved to 0; saved to ${opts.outDir}`);
  return { ...base, val, biasShift };
}
