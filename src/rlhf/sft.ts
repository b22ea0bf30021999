// Step 1 of InstructGPT (arXiv 2203.02155 §3.5): supervised fine-tuning on labeler demonstrations. Loss on the
// response tokens only; cosine decay; residual dropout; the final model is the epoch with the best validation reward
// model score of greedy samples (the paper's choice), or the best validation loss when no reward model is given.
import { join } from 'node:path';
import { type CausalLM, generate, type ScalarModel } from '../models/index.js';
import { applyLora, type LoraOptions, loraConfigOf, loraDefaults, saveTrained } from '../models/lora.js';
import { crossEntropy, noGrad, Rng, reshape, type Tensor, tidy } from '../tensor/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { saveRunConfig } from '../train/config.js';
import type { Metrics } from '../train/metrics.js';
import {
  checkModelFolder,
  encodeDemonstrations,
  Formatter,
  loadCausalLM,
  loadRewardModel,
  padRight,
  readDemonstrations,
  type SftExample,
  sftBatch,
  splitValidation,
} from './data.js';
import { checkLoopConfig, type LoopConfig, runLoop, type TrainerRun } from './loop.js';

export interface SftConfig extends LoopConfig, LoraOptions {
  /** GPT-2 residual dropout during training (the paper: 0.2); null keeps the model folder's. */
  dropout: number | null;
  /** Share of the demonstrations held out when no validation file is given. */
  valFraction: number;
  /** Validation prompts sampled for the reward-model score (0: all). */
  evalPrompts: number;
  /** Longest greedy sample for the reward-model score. */
  evalMaxNewTokens: number;
}

export const sftDefaults: SftConfig = {
  epochs: 16,
  batchSize: 8,
  lr: 2e-5,
  warmupRatio: 0.03,
  minLrRatio: 0.1,
  weightDecay: 0,
  maxGradNorm: 1,
  saveEvery: 0,
  seed: 0,
  dropout: 0.2,
  valFraction: 0.1,
  evalPrompts: 0,
  evalMaxNewTokens: 64,
  ...loraDefaults,
};

export function checkSftConfig(c: SftConfig, source = 'sft config'): void {
  checkLoopConfig(c, source);
  loraConfigOf(c, source);
  if (c.dropout !== null && !(c.dropout >= 0 && c.dropout < 1))
    throw new Error(`${source}: field "dropout" must be in [0, 1) or null, got ${c.dropout}`);
  if (!(c.valFraction >= 0 && c.valFraction < 1))
    throw new Error(`${source}: field "valFraction" must be in [0, 1), got ${c.valFraction}`);
  if (!Number.isInteger(c.evalPrompts) || c.evalPrompts < 0)
    throw new Error(`${source}: field "evalPrompts" must be an integer >= 0, got ${c.evalPrompts}`);
  if (!Number.isInteger(c.evalMaxNewTokens) || c.evalMaxNewTokens < 1)
    throw new Error(`${source}: field "evalMaxNewTokens" must be an integer >= 1, got ${c.evalMaxNewTokens}`);
}

/** Mean next-token cross-entropy over the response tokens of a batch (prompt and padding are ignored). */
export function sftLoss(model: CausalLM, examples: SftExample[], padId: number): Tensor {
  const { ids, mask, targets } = sftBatch(examples, padId);
  const logits = model.forward(ids, { attentionMask: mask });
  const [B, T, V] = logits.shape;
  return crossEntropy(reshape(logits, [B * T, V]), reshape(targets, [B * T]));
}

/** Validation loss: the mean over all response tokens of the set. */
export function validationLoss(model: CausalLM, examples: SftExample[], batchSize: number, padId: number): number {
  let total = 0;
  let count = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const chunk = examples.slice(i, i + batchSize);
    total += noGrad(() =>
      tidy(() => {
        const { ids, mask, targets } = sftBatch(chunk, padId);
        const logits = model.forward(ids, { attentionMask: mask });
        const [B, T, V] = logits.shape;
        return crossEntropy(reshape(logits, [B * T, V]), reshape(targets, [B * T]), { reduction: 'sum' }).item();
      }),
    );
    for (const e of chunk) count += e.ids.length - e.promptLength;
  }
  return total / count;
}

/** Reward-model scores of whole sequences (prompt + response), read at each one's last token. */
export function scoreSequences(rm: ScalarModel, sequences: number[][], batchSize: number, padId: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < sequences.length; i += batchSize) {
    const chunk = sequences.slice(i, i + batchSize);
    const scores = noGrad(() =>
      tidy(() => {
        const { ids, mask, lengths } = padRight(chunk, padId);
        return rm
          .scoreAt(
            ids,
            lengths.map((n) => n - 1),
            { attentionMask: mask },
          )
          .toArray();
      }),
    );
    out.push(...scores);
  }
  return out;
}

/** Mean reward-model score of the policy's greedy (temperature 0) samples on the prompts. */
export function sampleScore(
  policy: CausalLM,
  rm: ScalarModel,
  prompts: number[][],
  fmt: Formatter,
  opts: { batchSize: number; maxNewTokens: number },
): number {
  const longest = Math.max(...prompts.map((p) => p.length));
  const room = Math.min(policy.maxPositions, rm.trunk.maxPositions) - longest;
  const maxNewTokens = Math.max(1, Math.min(opts.maxNewTokens, room));
  const sequences: number[][] = [];
  for (let i = 0; i < prompts.length; i += opts.batchSize) {
    const chunk = prompts.slice(i, i + opts.batchSize);
    const { tokens } = generate(policy, chunk, {
      maxNewTokens,
      temperature: 0,
      eosTokenIds: [fmt.eosId],
      padTokenId: fmt.padId,
    });
    for (const [b, p] of chunk.entries()) sequences.push([...p, ...tokens[b]]);
  }
  const scores = scoreSequences(rm, sequences, opts.batchSize, fmt.padId);
  return scores.reduce((a, b) => a + b, 0) / scores.length;
}

export interface SftOptions extends TrainerRun {
  config: SftConfig;
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
  selectedBy: 'val/rm_score' | 'val/loss' | 'last epoch';
  bestValue: number | null;
}

/** Everything a run needs, checked before training: data, model, tokenizer, reward model. */
function prepareSft(opts: SftOptions) {
  checkSftConfig(opts.config);
  const cfg = opts.config;
  // Model folders and data files are checked before any weight is read.
  checkModelFolder(opts.modelDir, 'causal');
  if (opts.rewardModelDir) checkModelFolder(opts.rewardModelDir, 'scalar');
  const demos = readDemonstrations(opts.dataFile, { skipBad: opts.skipBad });
  const valDemos = opts.valFile ? readDemonstrations(opts.valFile, { skipBad: opts.skipBad }) : null;
  const reward = opts.rewardModelDir ? loadRewardModel(opts.rewardModelDir) : null;
  const { model, tokenizer, dropoutRng, note } = loadCausalLM(opts.modelDir, {
    residPdrop: cfg.dropout,
    seed: cfg.seed,
  });
  const lora = loraConfigOf(cfg);
  if (lora) applyLora(model, lora, { seed: cfg.seed });
  const fmt = new Formatter(tokenizer, opts.modelDir);
  if (reward) checkSameVocabulary(tokenizer, reward.tokenizer, opts.rewardModelDir!);
  const context = model.maxPositions;
  const encoded = encodeDemonstrations(demos.records, fmt, context, { skipBad: opts.skipBad });
  const encodedVal = valDemos ? encodeDemonstrations(valDemos.records, fmt, context, { skipBad: opts.skipBad }) : null;
  const split = encodedVal
    ? { train: encoded.records, val: encodedVal.records }
    : splitValidation(encoded.records, cfg.valFraction, cfg.seed);
  const skipped = [demos, valDemos, encoded, encodedVal]
    .flatMap((r) => r?.skipped ?? [])
    .map((e) => `${e.file}:${e.line}: ${e.message}`);
  return { model, tokenizer, dropoutRng, note, fmt, reward: reward?.model ?? null, ...split, skipped };
}

function checkSameVocabulary(policy: Tokenizer, rm: Tokenizer, rmDir: string): void {
  if (policy.vocabSize !== rm.vocabSize)
    throw new Error(
      `${join(rmDir, 'tokenizer.json')}: vocabulary of ${rm.vocabSize} tokens, the policy's has ${policy.vocabSize}; ` +
        'the reward model must share the policy tokenizer',
    );
}

export function trainSft(opts: SftOptions): SftResult {
  const cfg = opts.config;
  const say = opts.log ?? ((line: string) => console.error(line));
  const p = prepareSft(opts);
  if (p.note) say(p.note);
  for (const s of p.skipped) say(`skipped ${s}`);
  if (p.skipped.length > 0) say(`skipped ${p.skipped.length} bad line(s)`);
  say(`sft: ${p.train.length} training and ${p.val.length} validation demonstrations`);
  const selectedBy = p.val.length === 0 ? 'last epoch' : p.reward ? 'val/rm_score' : 'val/loss';
  const valPrompts = uniquePrompts(p.val, cfg.evalPrompts);
  saveRunConfig(opts.outDir, 'sft_config.json', {
    ...cfg,
    model: opts.modelDir,
    data: opts.dataFile,
    val: opts.valFile ?? null,
    rewardModel: opts.rewardModelDir ?? null,
  });

  let best: { epoch: number; value: number } | null = null;
  const result = runLoop(cfg, {
    stage: 'sft',
    outDir: opts.outDir,
    model: p.model,
    dropoutRng: p.dropoutRng,
    dataRng: new Rng(cfg.seed + 1),
    train: p.train,
    loss: (batch) => ({ loss: sftLoss(p.model, batch, p.fmt.padId) }),
    validate: () => {
      if (p.val.length === 0) return {};
      const m: Metrics = { 'val/loss': validationLoss(p.model, p.val, cfg.batchSize, p.fmt.padId) };
      if (p.reward)
        m['val/rm_score'] = sampleScore(p.model, p.reward, valPrompts, p.fmt, {
          batchSize: cfg.batchSize,
          maxNewTokens: cfg.evalMaxNewTokens,
        });
      return m;
    },
    afterEpoch: (epoch, val) => {
      const value = selectedBy === 'last epoch' ? epoch : Number(val[selectedBy]);
      const better =
        best === null ||
        selectedBy === 'last epoch' ||
        (selectedBy === 'val/loss' ? value < best.value : value > best.value);
      if (!better) return;
      best = { epoch, value };
      const full = saveTrained(p.model, opts.outDir, { baseModel: opts.modelDir, merge: cfg.loraMerge });
      p.tokenizer.save(opts.outDir);
      if (full && full !== opts.outDir) p.tokenizer.save(full);
      const why = selectedBy === 'last epoch' ? 'no validation data' : `${selectedBy} ${value.toFixed(4)}`;
      say(`sft: saved epoch ${epoch + 1} to ${opts.outDir} (${why})`);
    },
    state: {
      get: () => ({ best }),
      set: (s) => {
        best = s.best as typeof best;
      },
    },
    resume: opts.resume,
    signal: opts.signal,
    onStep: opts.onStep,
  });
  const chosen = best as { epoch: number; value: number } | null;
  return {
    ...result,
    trainExamples: p.train.length,
    valExamples: p.val.length,
    skipped: p.skipped,
    bestEpoch: chosen?.epoch ?? null,
    selectedBy,
    bestValue: selectedBy === 'last epoch' ? null : (chosen?.value ?? null),
  };
}

// Each distinct prompt once (a prompt with several demonstrations is sampled once), at most `limit` (0: all).
function uniquePrompts(examples: SftExample[], limit: number): number[][] {
  const seen = new Map<string, number[]>();
  for (const e of examples) {
    const prompt = e.ids.slice(0, e.promptLength);
    seen.set(prompt.join(','), prompt);
  }
  const all = [...seen.values()];
  return limit > 0 ? all.slice(0, limit) : all;
}
