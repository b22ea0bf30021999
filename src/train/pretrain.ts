// Pretraining a GPT-2 or Llama model from scratch on plain-text corpora: a byte-level BPE tokenizer trained on the
// corpus (unless one is given), the corpus tokenized into a token file, then next-token prediction on random
// windows with AdamW, warmup + cosine, gradient clipping and optional bf16 autocast. Validation loss on held-out
// windows, checkpoints for exact resume, metrics.jsonl. The output folder ends as a Hugging Face checkpoint.
//
// Run folder (--out):
//   config.json, model.safetensors, tokenizer.json, tokenizer_config.json   the Hugging Face checkpoint (at the end)
//   pretrain_config.json      the resolved run config        metrics.jsonl   one record per step
//   data/tokens.bin(.json)    the tokenized corpus           checkpoints/step-NNNNNNNN/   for --resume
//
// Exact resume: a checkpoint holds the weights, the AdamW moments and step counts, and the states of the two
// random streams (data windows; dropout). Everything else is a function of the step, so a resumed run repeats
// the uninterrupted one bit for bit (same machine, same thread count).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type CausalLM, GPT2, Llama, savePretrained, type TokenIds, tokenIdsOf } from '../models/index.js';
import { AdamW, clipGradNorm, cosineWithWarmup, type OptimizerStateDict } from '../nn/index.js';
import { autocast, backward, crossEntropy, noGrad, Rng, reshape, Tensor, tidy } from '../tensor/index.js';
import { Tokenizer, trainBpe } from '../tokenizer/index.js';
import { listCheckpoints, loadLatestCheckpoint, saveCheckpoint } from './checkpoint.js';
import { mergeConfig, printConfig, saveRunConfig } from './config.js';
import { MetricsLog } from './metrics.js';
import { Progress } from './progress.js';
import {
  type CorpusFileStamp,
  readDocuments,
  readTokenMeta,
  stampCorpus,
  TokenFile,
  tokenizeCorpus,
  tokenizerHash,
} from './tokens.js';

export const MODEL_KINDS = ['gpt2', 'llama'] as const;
export const SIZE_PRESETS = ['tiny', 'mini', 'small'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];
export type SizePreset = (typeof SIZE_PRESETS)[number];

export interface PretrainConfig {
  /** Corpus files: plain text (documents separated by blank lines) or .jsonl with one {"text"} per line. */
  corpus: string[];
  /** Run folder; ends as a Hugging Face checkpoint. */
  out: string;
  model: ModelKind;
  size: SizePreset;
  /** A tokenizer folder to use instead of training one on the corpus. */
  tokenizer: string | null;
  /** Vocabulary of the trained tokenizer (ignored with `tokenizer`). */
  vocabSize: number;
  steps: number;
  batch: number;
  /** Tokens per training window (and the model's context). */
  seq: number;
  lr: number;
  minLr: number;
  /** Share of the steps spent warming the learning rate up from 0. */
  warmupRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  /** Maximum gradient L2 norm. */
  gradClip: number;
  /** GPT-2 dropout (Llama has none). */
  dropout: number;
  bf16: boolean;
  /** Validation loss every this many steps (and at the start and the end). */
  evalEvery: number;
  /** Batches of held-out windows per validation. */
  evalBatches: number;
  saveEvery: number;
  /** Share of the tokens held out for validation (at least one window). */
  valFraction: number;
  seed: number;
}

export const pretrainDefaults: PretrainConfig = {
  corpus: [],
  out: '',
  model: 'gpt2',
  size: 'tiny',
  tokenizer: null,
  vocabSize: 4096,
  steps: 1000,
  batch: 8,
  seq: 128,
  lr: 1e-3,
  minLr: 1e-4,
  warmupRatio: 0.05,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  gradClip: 1,
  dropout: 0,
  bf16: false,
  evalEvery: 100,
  evalBatches: 4,
  saveEvery: 200,
  valFraction: 0.05,
  seed: 0,
};

/** Model shapes per preset: tiny has a few hundred thousand parameters, mini about a million, small a few million (vocab 4096). */
export const MODEL_PRESETS = {
  gpt2: {
    tiny: { nEmbd: 64, nLayer: 2, nHead: 4 },
    mini: { nEmbd: 128, nLayer: 4, nHead: 4 },
    small: { nEmbd: 256, nLayer: 4, nHead: 4 },
  },
  llama: {
    tiny: { hiddenSize: 64, intermediateSize: 176, numLayers: 2, numHeads: 4, numKvHeads: 2 },
    mini: { hiddenSize: 128, intermediateSize: 344, numLayers: 4, numHeads: 4, numKvHeads: 2 },
    small: { hiddenSize: 256, intermediateSize: 688, numLayers: 4, numHeads: 4, numKvHeads: 2 },
  },
} as const;

/** The command-line flag of each field, for error messages. */
const FLAGS: Partial<Record<keyof PretrainConfig, string>> = {
  corpus: '--corpus',
  out: '--out',
  model: '--model',
  size: '--size',
  tokenizer: '--tokenizer',
  vocabSize: '--vocab-size',
  steps: '--steps',
  batch: '--batch',
  seq: '--seq',
  lr: '--lr',
  seed: '--seed',
};

function fieldName(key: keyof PretrainConfig): string {
  return FLAGS[key] ? `"${key}" (${FLAGS[key]})` : `"${key}"`;
}

/** Defaults, then each layer of overrides in order (a config file, the command line), checked field by field. */
export function resolvePretrainConfig(layers: { values: Record<string, unknown>; source: string }[]): PretrainConfig {
  let cfg = pretrainDefaults;
  for (const { values, source } of layers) cfg = mergeConfig(cfg, values, source);
  checkPretrainConfig(cfg);
  return cfg;
}

/** Throws an error naming the first field that is out of range. */
export function checkPretrainConfig(cfg: PretrainConfig): void {
  const fail = (key: keyof PretrainConfig, want: string): never => {
    throw new Error(`pretrain config: field ${fieldName(key)} must be ${want}, got ${JSON.stringify(cfg[key])}`);
  };
  const int = (key: keyof PretrainConfig, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const v = cfg[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      fail(key, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`);
  };
  const real = (key: keyof PretrainConfig, min: number, max: number, openMax = false) => {
    const v = cfg[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (openMax && v === max))
      fail(key, `a number in [${min}, ${max}${openMax ? ')' : ']'}`);
  };
  if (!Array.isArray(cfg.corpus) || cfg.corpus.length === 0 || !cfg.corpus.every((f) => typeof f === 'string' && f))
    fail('corpus', 'a non-empty list of files');
  if (typeof cfg.out !== 'string' || cfg.out === '') fail('out', 'a folder path');
  if (!MODEL_KINDS.includes(cfg.model)) fail('model', `one of ${MODEL_KINDS.join(', ')}`);
  if (!SIZE_PRESETS.includes(cfg.size)) fail('size', `one of ${SIZE_PRESETS.join(', ')}`);
  if (cfg.tokenizer !== null && (typeof cfg.tokenizer !== 'string' || cfg.tokenizer === ''))
    fail('tokenizer', 'a folder path or null');
  int('vocabSize', 261); // 256 bytes and the 5 special tokens trainBpe adds with chatTokens
  if (cfg.vocabSize > 65535 && cfg.tokenizer === null) fail('vocabSize', 'at most 65535 for a trained tokenizer');
  int('steps', 1);
  // Bounds far above what a CPU run uses, so that a typo fails here and not in a giant allocation.
  int('batch', 1, 1 << 16);
  int('seq', 2, 1 << 16);
  real('lr', 0, 10);
  real('minLr', 0, cfg.lr);
  real('warmupRatio', 0, 1);
  real('weightDecay', 0, 10);
  real('beta1', 0, 1, true);
  real('beta2', 0, 1, true);
  real('gradClip', 0, Number.MAX_VALUE);
  real('dropout', 0, 1, true);
  if (typeof cfg.bf16 !== 'boolean') fail('bf16', 'true or false');
  int('evalEvery', 1);
  int('evalBatches', 1);
  int('saveEvery', 1);
  real('valFraction', 0, 0.5);
  int('seed', 0);
  if (cfg.seed > 0xffffffff) fail('seed', 'below 2^32');
}

/** A fresh model of the preset's shape, its weights (and dropout) drawn from rng. */
export function buildModel(cfg: PretrainConfig, vocabSize: number, tokenIds: TokenIds, rng: Rng): CausalLM {
  if (cfg.model === 'llama') {
    const p = MODEL_PRESETS.llama[cfg.size];
    return new Llama(
      {
        vocabSize,
        ...p,
        headDim: p.hiddenSize / p.numHeads,
        rmsNormEps: 1e-5,
        ropeTheta: 10000,
        maxPositions: cfg.seq,
        tieWordEmbeddings: true,
        qkvBias: false,
        oBias: false,
        tokenIds,
      },
      rng,
    );
  }
  return new GPT2(
    {
      vocabSize,
      nPositions: cfg.seq,
      ...MODEL_PRESETS.gpt2[cfg.size],
      layerNormEpsilon: 1e-5,
      activation: 'gelu_new',
      residPdrop: cfg.dropout,
      embdPdrop: cfg.dropout,
      tieWordEmbeddings: true,
      tokenIds,
    },
    rng,
  );
}

export interface PretrainOptions {
  /** Continue from the newest checkpoint in the run folder (a fresh start when there is none). */
  resume?: boolean;
  /** Where progress and notes go (default stderr). */
  stream?: NodeJS.WriteStream;
}

export interface PretrainResult {
  out: string;
  parameters: number;
  /** The step the run resumed from, or null. */
  resumedFrom: number | null;
  /** Validation loss before the first step (null when resumed) and after the last. */
  initialValLoss: number | null;
  finalValLoss: number;
}

interface CheckpointState {
  tokenizer: string;
  tokens: number;
  dataRng: number[];
  modelRng: number[];
  optimizer: OptimizerStateDict['meta'];
}

function sameCorpus(a: CorpusFileStamp[], b: CorpusFileStamp[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

// Absolute paths, so that a resume from another working folder finds the same files.
function absolutePaths(cfg: PretrainConfig): PretrainConfig {
  return {
    ...cfg,
    corpus: cfg.corpus.map((f) => resolve(f)),
    out: resolve(cfg.out),
    tokenizer: cfg.tokenizer === null ? null : resolve(cfg.tokenizer),
  };
}

// On resume the run's saved config must match: a changed batch, schedule or corpus would not continue the run.
function checkSameRun(cfg: PretrainConfig, savedPath: string): void {
  if (!existsSync(savedPath)) throw new Error(`${savedPath}: not found; cannot resume a run without its config`);
  const saved = JSON.parse(readFileSync(savedPath, 'utf8')) as Record<string, unknown>;
  for (const key of Object.keys(cfg) as (keyof PretrainConfig)[])
    if (JSON.stringify(saved[key]) !== JSON.stringify(cfg[key]))
      throw new Error(
        `--resume: field ${fieldName(key)} is ${JSON.stringify(cfg[key])} here but ${JSON.stringify(saved[key])} in ${savedPath}; resume with the run's settings`,
      );
}

/** Runs (or resumes) a pretraining run; see the top of this file. Bad input throws before any compute. */
export function pretrain(config: PretrainConfig, opts: PretrainOptions = {}): PretrainResult {
  checkPretrainConfig(config);
  const cfg = absolutePaths(config);
  const stream = opts.stream ?? process.stderr;
  const note = (line: string) => stream.write(`${line}\n`);
  const stamps = stampCorpus(cfg.corpus);
  const out = cfg.out;
  const ckptRoot = join(out, 'checkpoints');
  const configPath = join(out, 'pretrain_config.json');
  const hasCheckpoints = listCheckpoints(ckptRoot).length > 0;
  if (hasCheckpoints && !opts.resume)
    throw new Error(
      `${out}: holds checkpoints of an earlier run; pass --resume to continue it, or choose another --out`,
    );
  const resuming = opts.resume === true && hasCheckpoints;
  if (resuming) checkSameRun(cfg, configPath);
  else if (opts.resume) note(`${out}: no checkpoint to resume from; starting afresh`);
  let tokenizer: Tokenizer | null = null;
  if (cfg.tokenizer !== null) tokenizer = Tokenizer.fromDir(cfg.tokenizer);
  else if (resuming) tokenizer = Tokenizer.fromDir(out);

  printConfig('pretrain config', cfg);
  mkdirSync(join(out, 'data'), { recursive: true });
  saveRunConfig(out, 'pretrain_config.json', cfg);
  if (tokenizer === null) {
    note(`training a byte-level BPE tokenizer (vocab ${cfg.vocabSize}) on the corpus`);
    const texts = (function* () {
      for (const piece of readDocuments(cfg.corpus)) yield piece.text;
    })();
    tokenizer = trainBpe(texts, { vocabSize: cfg.vocabSize, chatTokens: true, modelMaxLength: cfg.seq });
  }
  if (!resuming) tokenizer.save(out);
  const hash = tokenizerHash(tokenizer);

  const tokPath = join(out, 'data', 'tokens.bin');
  const meta = readTokenMeta(tokPath);
  if (meta === null || meta.tokenizer !== hash || !sameCorpus(meta.corpus, stamps)) {
    note('tokenizing the corpus');
    tokenizeCorpus(cfg.corpus, tokenizer, tokPath);
  }
  const tokens = TokenFile.open(tokPath);
  try {
    const T = cfg.seq;
    const valCount = Math.max(Math.ceil(tokens.count * cfg.valFraction), T + 1);
    const trainCount = tokens.count - valCount;
    if (trainCount < T + 1)
      throw new Error(
        `${cfg.corpus.join(', ')}: ${tokens.count} tokens are too few for seq ${T}: need at least ${2 * (T + 1)} (a training and a validation window); add text or lower --seq`,
      );
    note(
      `${tokens.count} tokens (${tokens.meta.documents} documents): ${trainCount} for training, ${valCount} held out`,
    );
    return train(cfg, tokenizer, tokens, trainCount, { resuming, ckptRoot, hash, stream });
  } finally {
    tokens.close();
  }
}

function train(
  cfg: PretrainConfig,
  tokenizer: Tokenizer,
  tokens: TokenFile,
  trainCount: number,
  ctx: { resuming: boolean; ckptRoot: string; hash: string; stream: NodeJS.WriteStream },
): PretrainResult {
  const { batch: B, seq: T } = cfg;
  const note = (line: string) => ctx.stream.write(`${line}\n`);
  const modelRng = new Rng(cfg.seed);
  // A separate stream for the windows, so that the data order does not depend on the model's size.
  const dataRng = new Rng((cfg.seed ^ 0x9e3779b9) >>> 0);
  const model = buildModel(cfg, tokenizer.vocabSize, tokenIdsOf(tokenizer), modelRng);
  const V = tokenizer.vocabSize;
  const named = model.namedParameters();
  // No weight decay on biases, norms' gains and other vectors (as GPT-2 and nanoGPT do).
  const opt = new AdamW(
    [
      { params: named.filter(([, p]) => p.ndim >= 2).map(([, p]) => p) },
      { params: named.filter(([, p]) => p.ndim < 2).map(([, p]) => p), weightDecay: 0 },
    ],
    { lr: cfg.lr, betas: [cfg.beta1, cfg.beta2], weightDecay: cfg.weightDecay },
  );
  const parameters = model.numParameters();
  note(`model: ${cfg.model} ${cfg.size}, ${parameters.toLocaleString('en-US')} parameters, vocab ${V}, context ${T}`);

  const metrics = new MetricsLog(join(cfg.out, 'metrics.jsonl'), 'pretrain');
  let start = 0;
  if (ctx.resuming) {
    const ckpt = loadLatestCheckpoint(ctx.ckptRoot, ['model', 'optimizer'])!;
    const state = ckpt.state as unknown as CheckpointState;
    if (state.tokenizer !== ctx.hash || state.tokens !== tokens.count)
      throw new Error(
        `${ctx.ckptRoot}: the checkpoint was trained on ${state.tokens} tokens from tokenizer ${state.tokenizer}, now ${tokens.count} from ${ctx.hash}; the corpus or tokenizer changed`,
      );
    model.loadStateDict(ckpt.tensors.model);
    opt.loadStateDict({ meta: state.optimizer, tensors: ckpt.tensors.optimizer });
    for (const group of Object.values(ckpt.tensors)) for (const t of group.values()) t.dispose();
    dataRng.setState(state.dataRng);
    modelRng.setState(state.modelRng);
    start = ckpt.step;
    metrics.truncateFrom(start + 1);
    note(`resuming from step ${start}`);
  } else metrics.truncateFrom(0);

  const dtype = cfg.bf16 ? 'bf16' : 'f32';
  const valStart = trainCount;
  const valWindows = Math.min(cfg.evalBatches * B, Math.floor((tokens.count - valStart - 1) / T));
  const x = Tensor.empty([B, T], 'i32');
  const y = Tensor.empty([B, T], 'i32');
  const window = new Int32Array(T + 1);
  const fill = (row: number, offset: number) => {
    tokens.read(offset, T + 1, window);
    x.i32.set(window.subarray(0, T), row * T);
    y.i32.set(window.subarray(1), row * T);
  };
  const validate = (): number => {
    model.eval();
    let sum = 0;
    for (let w = 0; w < valWindows; w += B) {
      const rows = Math.min(B, valWindows - w);
      for (let r = 0; r < rows; r++) fill(r, valStart + (w + r) * T);
      sum += noGrad(() =>
        tidy(() =>
          autocast(dtype, () => {
            const ids = rows === B ? x : Tensor.fromBuffer(x.i32.slice(0, rows * T), [rows, T]);
            const targets = rows === B ? y : Tensor.fromBuffer(y.i32.slice(0, rows * T), [rows, T]);
            const logits = model.forward(ids);
            return crossEntropy(reshape(logits, [-1, V]), reshape(targets, [-1]), { reduction: 'sum' }).item();
          }),
        ),
      );
    }
    model.train();
    return sum / (valWindows * T);
  };

  const warmupSteps = Math.round(cfg.warmupRatio * cfg.steps);
  const schedule = { lr: cfg.lr, minLr: cfg.minLr, warmupSteps, totalSteps: cfg.steps };
  const params = model.parameters();
  let initialValLoss: number | null = null;
  let valLoss = Number.NaN;
  if (start === 0) {
    initialValLoss = valLoss = validate();
    metrics.write(0, { 'val/loss': valLoss });
  }
  // Counted from where this process starts, so that the ETA of a resumed run is right.
  const progress = new Progress(
    start > 0 ? `pretrain (from step ${start})` : 'pretrain',
    cfg.steps - start,
    ctx.stream,
  );
  model.train();
  try {
    for (let step = start + 1; step <= cfg.steps; step++) {
      const t0 = performance.now();
      for (let b = 0; b < B; b++) fill(b, dataRng.int(trainCount - T));
      opt.zeroGrad();
      const loss = tidy(() =>
        autocast(dtype, () => {
          const logits = model.forward(x);
          const l = crossEntropy(reshape(logits, [-1, V]), reshape(y, [-1]));
          backward(l);
          return l.item();
        }),
      );
      const gradNorm = clipGradNorm(params, cfg.gradClip);
      if (!Number.isFinite(gradNorm))
        throw new Error(`step ${step}: the gradient norm is ${gradNorm}; lower --lr or enable gradClip`);
      const lr = cosineWithWarmup(step - 1, schedule);
      opt.step(lr);
      opt.zeroGrad();
      const tokPerS = (B * T * 1000) / (performance.now() - t0);
      const record: Record<string, number> = { 'train/loss': loss, 'train/grad_norm': gradNorm, lr, 'tok/s': tokPerS };
      if (step % cfg.evalEvery === 0 || step === cfg.steps) record['val/loss'] = valLoss = validate();
      metrics.write(step, record);
      if (step % cfg.saveEvery === 0 || step === cfg.steps) {
        const optState = opt.stateDict();
        const state: CheckpointState = {
          tokenizer: ctx.hash,
          tokens: tokens.count,
          dataRng: dataRng.getState(),
          modelRng: modelRng.getState(),
          optimizer: optState.meta,
        };
        saveCheckpoint(ctx.ckptRoot, {
          step,
          state: state as unknown as Record<string, unknown>,
          tensors: { model: new Map(model.namedParameters()), optimizer: optState.tensors },
        });
      }
      const val = Number.isFinite(valLoss) ? ` val ${valLoss.toFixed(4)}` : '';
      progress.update(
        step - start,
        `step ${step} loss ${loss.toFixed(4)}${val} lr ${lr.toExponential(2)} ${Math.round(tokPerS).toLocaleString('en-US')} tok/s`,
      );
    }
  } finally {
    progress.stop();
    x.dispose();
    y.dispose();
  }
  if (!Number.isFinite(valLoss)) valLoss = validate(); // resumed at the last step: nothing ran in this process
  savePretrained(model, cfg.out);
  note(`saved the model to ${cfg.out} (val loss ${valLoss.toFixed(4)})`);
  return { out: cfg.out, parameters, resumedFrom: ctx.resuming ? start : null, initialValLoss, finalValLoss: valLoss };
}
