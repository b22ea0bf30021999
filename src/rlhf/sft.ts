// Step 1 of InstructGPT (arXiv 2203.02155 §3.5): supervised fine-tuning on labeler demonstrations. Loss on the
// response tokens only; cosine decay; residual dropout; the final model is the epoch with the best validation reward
// model score of greedy samples (the paper's choice), or the best validation loss when no reward model is given.
// The config is sft_config.ts's, the evaluation sft_eval.ts's; this file loads the inputs and is the trainer.
import { join } from 'node:path';
import { type CausalLM, checkModelFolder, loadRewardModel } from '../models/index.js';
import { applyLora, loraConfigOf } from '../models/lora.js';
import { crossEntropy, Rng, reshape, type Tensor } from '../tensor/index.js';
import { Formatter, type Tokenizer } from '../tokenizer/index.js';
import { EpochBatches, splitValidation } from '../train/batches.js';
import { openRun, runTrainer, type StepOutput, type TrainedPart, type Trainer } from '../train/loop.js';
import { METRIC, type Metrics } from '../train/metrics.js';
import { corpusTokens } from '../train/tokens.js';
import {
  encodeDemonstrations,
  loadCausalLM,
  readDemonstrations,
  type SftExample,
  saveOutput,
  sftBatch,
  startingPromptFormat,
  type TrainerRun,
} from './data.js';
import { ptxStep, ptxWindows } from './ptx.js';
import { checkSftConfig, type SftConfig } from './sft_config.js';
import { sampleScore, uniquePrompts, validationLoss } from './sft_eval.js';

export { checkSftConfig, type SftConfig, sftDefaults, sftSpec } from './sft_config.js';
export { sampleScore, validationLoss } from './sft_eval.js';

/** Mean next-token cross-entropy over the response tokens of a batch (prompt and padding are ignored). */
export function sftLoss(model: CausalLM, examples: SftExample[], padId: number): Tensor {
  const { ids, mask, targets } = sftBatch(examples, padId);
  const logits = model.forward(ids, { attentionMask: mask });
  const [B, T, V] = logits.shape;
  return crossEntropy(reshape(logits, [B * T, V]), reshape(targets, [B * T]));
}

export interface SftOptions extends TrainerRun {
  config: SftConfig;
  /** A pretraining corpus mixed into every update with weight config.ptxCoef (read as pretrain and PPO-ptx read it). */
  ptxFiles?: string[];
  /** A reward model folder: selects the final epoch by the score of greedy validation samples. */
  rewardModelDir?: string;
}

export interface SftResult {
  steps: number;
  aborted: boolean;
  trainExamples: number;
  valExamples: number;
  /** Bad lines skipped with skipBad, as file:line messages. */
  skipped: string[];
  /** Epoch (0-based) of the saved model, null when aborted before the first epoch ended. */
  bestEpoch: number | null;
  selectedBy: 'eval/rm_score' | 'eval/loss' | 'last epoch';
  bestValue: number | null;
}

/** Everything a run needs, checked before training: data, model, tokenizer, reward model. */
function prepareSft(opts: SftOptions) {
  const cfg = opts.config;
  // Model folders and data files are checked before any weight is read.
  checkModelFolder(opts.modelDir, 'causal', opts.base);
  if (opts.rewardModelDir) checkModelFolder(opts.rewardModelDir, 'scalar');
  const demos = readDemonstrations(opts.dataFile, { skipBad: opts.skipBad });
  const valDemos = opts.valFile ? readDemonstrations(opts.valFile, { skipBad: opts.skipBad }) : null;
  // The reward model is frozen: held in bf16 with --bf16.
  const reward = opts.rewardModelDir
    ? loadRewardModel(opts.rewardModelDir, { dtype: cfg.bf16 ? 'bf16' : 'f32' })
    : null;
  const { model, tokenizer, dropoutRng, note } = loadCausalLM(opts.modelDir, {
    base: opts.base,
    residPdrop: cfg.dropout,
    seed: cfg.seed,
  });
  const lora = loraConfigOf(cfg);
  if (lora) applyLora(model, lora, { seed: cfg.seed, frozenDtype: cfg.bf16 ? 'bf16' : 'f32' });
  const fmt = new Formatter(tokenizer, opts.modelDir, cfg.promptFormat);
  const ptx = ptxWindows(opts.ptxFiles ? corpusTokens(opts.ptxFiles, tokenizer) : null, cfg, model.maxPositions);
  if (reward?.tokenizer) checkSameVocabulary(tokenizer, reward.tokenizer, opts.rewardModelDir!);
  const context = model.maxPositions;
  const encoded = encodeDemonstrations(demos.records, fmt, context, { skipBad: opts.skipBad });
  const encodedVal = valDemos ? encodeDemonstrations(valDemos.records, fmt, context, { skipBad: opts.skipBad }) : null;
  const split = encodedVal
    ? { train: encoded.records, val: encodedVal.records }
    : splitValidation(encoded.records, cfg.valFraction, cfg.seed);
  const skipped = [demos, valDemos, encoded, encodedVal]
    .flatMap((r) => r?.skipped ?? [])
    .map((e) => `${e.file}:${e.line}: ${e.message}`);
  return {
    model,
    modelDir: opts.modelDir,
    tokenizer,
    dropoutRng,
    note,
    fmt,
    ptx,
    reward: reward?.model ?? null,
    ...split,
    skipped,
  };
}

function checkSameVocabulary(policy: Tokenizer, rm: Tokenizer, rmDir: string): void {
  if (policy.vocabSize !== rm.vocabSize)
    throw new Error(
      `${join(rmDir, 'tokenizer.json')}: vocabulary of ${rm.vocabSize} tokens, the policy's has ${policy.vocabSize}; ` +
        'the reward model must share the policy tokenizer',
    );
}

type Prepared = ReturnType<typeof prepareSft>;

/** SFT on the loop: one batch of demonstrations per step; validation (and the model kept) at each epoch's end. */
// A batch of demonstrations, or (with the pretraining mix) the corpus's next windows, added to the same update.
type SftBatch = { kind: 'demos'; examples: SftExample[] } | { kind: 'ptx' };

class SftTrainer implements Trainer<SftBatch> {
  readonly stage = 'sft';
  readonly parts: TrainedPart[];
  readonly rngs: Record<string, Rng>;
  readonly data: EpochBatches<SftExample>;
  readonly totalSteps: number;
  readonly totalUpdates: number;
  readonly selectedBy: SftResult['selectedBy'];
  best: { epoch: number; value: number } | null = null;
  private readonly valPrompts: number[][];

  constructor(
    private readonly p: Prepared,
    private readonly cfg: SftConfig,
    private readonly outDir: string,
    private readonly say: (line: string) => void,
  ) {
    this.parts = [{ name: 'model', module: p.model, lr: cfg.lr, gradNormMetric: METRIC.gradNorm }];
    const dataRng = new Rng(cfg.seed + 1);
    this.rngs = { data: dataRng, dropout: p.dropoutRng };
    this.data = new EpochBatches(p.train, cfg.batchSize, cfg.epochs, dataRng);
    this.totalSteps = this.totalUpdates = this.data.totalSteps;
    this.selectedBy = p.val.length === 0 ? 'last epoch' : p.reward ? METRIC.evalRmScore : METRIC.evalLoss;
    this.valPrompts = uniquePrompts(p.val, cfg.evalPrompts);
    p.model.train();
  }

  *updates(): Iterable<SftBatch[]> {
    const demos = { kind: 'demos', examples: this.data.next() } as const;
    yield this.p.ptx ? [demos, { kind: 'ptx' }] : [demos];
  }

  step(batch: SftBatch): StepOutput {
    if (batch.kind === 'ptx') return ptxStep(this.p.model, this.p.ptx!, this.cfg);
    return {
      loss: sftLoss(this.p.model, batch.examples, this.p.fmt.padId),
      tokens: batch.examples.reduce((n, e) => n + e.ids.length, 0),
    };
  }

  endStep(): Metrics {
    return { [METRIC.epoch]: this.data.progress };
  }

  checkpointDue(): boolean {
    return this.data.epochEnded;
  }

  // At the end of each epoch: validation, and the model saved when it is the best so far.
  evaluate(): Metrics | null {
    if (!this.data.epochEnded) return null;
    const { p, cfg } = this;
    const epoch = this.data.position.epoch;
    const m: Metrics = {};
    p.model.eval();
    if (p.val.length > 0) {
      m[METRIC.evalLoss] = validationLoss(p.model, p.val, cfg.batchSize, p.fmt.padId);
      if (p.reward)
        m[METRIC.evalRmScore] = sampleScore(p.model, p.reward, this.valPrompts, p.fmt, {
          batchSize: cfg.batchSize,
          maxNewTokens: cfg.evalMaxNewTokens,
        });
    }
    const by = this.selectedBy;
    const value = by === 'last epoch' ? epoch : Number(m[by]);
    const better =
      this.best === null ||
      by === 'last epoch' ||
      (by === METRIC.evalLoss ? value < this.best.value : value > this.best.value);
    if (better) {
      this.best = { epoch, value };
      const { merge, saveDtype: dtype } = this.cfg;
      saveOutput(p.model, p.tokenizer, this.outDir, { baseModel: p.modelDir, merge, dtype });
      const why = by === 'last epoch' ? 'no validation data' : `${by} ${value.toFixed(4)}`;
      this.say(`sft: saved epoch ${epoch + 1} to ${this.outDir} (${why})`);
    }
    p.model.train();
    return m;
  }

  saveState() {
    return { state: { position: this.data.position, best: this.best, ptxCursor: this.p.ptx?.cursor ?? 0 } };
  }

  loadState(s: Record<string, unknown>): void {
    this.data.position = s.position as EpochBatches<SftExample>['position'];
    this.best = s.best as SftTrainer['best'];
    if (this.p.ptx) this.p.ptx.cursor = (s.ptxCursor as number | undefined) ?? 0;
  }
}

/** The pretraining mix needs both a corpus and ptxCoef > 0: either alone is an error (γ_ptx is 0 by default). */
export function checkSftPtx(c: SftConfig, hasCorpus: boolean): void {
  const mixing = c.ptxCoef > 0;
  if (mixing !== hasCorpus)
    throw new Error(
      mixing
        ? `sft: field "ptxCoef" is ${c.ptxCoef} but no pretraining corpus is given: pass --ptx FILE (or ptxCoef 0)`
        : 'sft: a pretraining corpus (--ptx) is mixed in only with field "ptxCoef" > 0: pass --ptx-coef (e.g. 1)',
    );
}

export function trainSft(opts: SftOptions): SftResult {
  checkSftConfig(opts.config);
  checkSftPtx(opts.config, opts.ptxFiles !== undefined && opts.ptxFiles.length > 0);
  // Saved resolved: sft_config.json beside the model records the format for the stages that read this folder.
  const promptFormat = startingPromptFormat(opts.modelDir, opts.base, opts.config.promptFormat);
  const cfg = { ...opts.config, promptFormat };
  const say = opts.log ?? ((line: string) => console.error(line));
  const config = {
    ...cfg,
    model: opts.modelDir,
    data: opts.dataFile,
    val: opts.valFile ?? null,
    rewardModel: opts.rewardModelDir ?? null,
    ptx: opts.ptxFiles ?? null,
  };
  const runOpts = { ...opts, config, log: say };
  const resuming = openRun('sft', runOpts);
  const p = prepareSft({ ...opts, config: cfg });
  if (p.note) say(p.note);
  for (const s of p.skipped) say(`skipped ${s}`);
  if (p.skipped.length > 0) say(`skipped ${p.skipped.length} bad line(s)`);
  say(`sft: ${p.train.length} training and ${p.val.length} validation demonstrations`);
  const trainer = new SftTrainer(p, cfg, opts.outDir, say);
  const result = runTrainer(trainer, resuming, runOpts);
  p.model.eval();
  const chosen = trainer.best;
  return {
    steps: result.steps,
    aborted: result.stopped,
    trainExamples: p.train.length,
    valExamples: p.val.length,
    skipped: p.skipped,
    bestEpoch: chosen?.epoch ?? null,
    selectedBy: trainer.selectedBy,
    bestValue: trainer.selectedBy === 'last epoch' ? null : (chosen?.value ?? null),
  };
}
