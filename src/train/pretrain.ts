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
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Type } from '@sinclair/typebox';
import { type CausalLM, GPT2, Llama, savePretrained, type TokenIds, tokenIdsOf } from '../models/index.js';
import { autocast, crossEntropy, noGrad, Rng, reshape, Tensor, tidy } from '../tensor/index.js';
import { Tokenizer, trainBpe } from '../tokenizer/index.js';
import { baseFields, ConfigSpec } from './config.js';
import { openRun, runTrainer, type StepOutput, type TrainedPart, type Trainer } from './loop.js';
import { METRIC, type Metrics } from './metrics.js';
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

const oneOf = <T extends string>(values: readonly T[], def: T, description: string) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    { default: def, description },
  );

export const pretrainSpec = new ConfigSpec('pretrain', {
  corpus: Type.Array(Type.String({ minLength: 1 }), {
    minItems: 1,
    default: [],
    description: 'corpus files: plain text (blank lines between documents) or .jsonl ({"text"} per line)',
  }),
  out: Type.String({
    minLength: 1,
    default: '',
    want: 'a folder path',
    description: 'run folder: checkpoints, metrics.jsonl, the final model',
  }),
  model: oneOf(MODEL_KINDS, 'gpt2', 'model family'),
  size: oneOf(SIZE_PRESETS, 'tiny', 'model size preset'),
  tokenizer: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
    default: null,
    want: 'a folder path or null',
    description: 'a tokenizer folder to use instead of training one',
  }),
  // 256 bytes and the 5 special tokens trainBpe adds with chatTokens; a trained vocabulary must fit uint16 ids.
  vocabSize: Type.Integer({ minimum: 261, default: 4096, description: 'vocabulary of the trained tokenizer' }),
  steps: Type.Integer({ minimum: 1, default: 1000, description: 'optimizer steps' }),
  // Bounds far above what a CPU run uses, so that a typo fails here and not in a giant allocation.
  seq: Type.Integer({ minimum: 2, maximum: 1 << 16, default: 128, description: 'tokens per window and the context' }),
  dropout: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0, description: 'GPT-2 dropout (Llama has none)' }),
  evalEvery: Type.Integer({ minimum: 1, default: 100, description: 'validation loss every this many steps' }),
  evalBatches: Type.Integer({ minimum: 1, default: 4, description: 'batches of held-out windows per validation' }),
  valFraction: Type.Number({ minimum: 0, maximum: 0.5, default: 0.05, description: 'share of tokens held out' }),
  ...baseFields({
    batchSize: 8,
    lr: 1e-3,
    warmupRatio: 0.05,
    minLrRatio: 0.1,
    weightDecay: 0.1,
    adamBeta2: 0.95,
    saveEvery: 200,
  }),
});

export type PretrainConfig = typeof pretrainSpec.defaults;
export const pretrainDefaults: PretrainConfig = pretrainSpec.defaults;

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

/** Defaults, then each layer of overrides in order (a config file, the command line), checked field by field. */
export function resolvePretrainConfig(layers: { values: Record<string, unknown>; source: string }[]): PretrainConfig {
  const cfg = pretrainSpec.resolve(layers);
  checkPretrainConfig(cfg);
  return cfg;
}

/** Throws an error naming the first field that is out of range. */
export function checkPretrainConfig(cfg: PretrainConfig): void {
  pretrainSpec.check(cfg);
  if (cfg.vocabSize > 65535 && cfg.tokenizer === null)
    throw new Error(`pretrain config: field "vocabSize" (--vocab-size) must be at most 65535 for a trained tokenizer`);
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
  /** Resume even though the config differs from the saved one. */
  forceConfig?: boolean;
  /** Where progress and notes go (default stderr). */
  stream?: NodeJS.WriteStream;
  /** Checkpoint and stop on SIGINT / SIGTERM (the CLI). */
  handleSignals?: boolean;
}

export interface PretrainResult {
  out: string;
  parameters: number;
  /** The step the run resumed from, or null. */
  resumedFrom: number | null;
  /** Validation loss before the first step (null when resumed) and after the last. */
  initialValLoss: number | null;
  finalValLoss: number;
  /** Stopped by a signal before the last step (no final model written). */
  stopped: boolean;
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

/** Runs (or resumes) a pretraining run; see the top of this file. Bad input throws before any compute. */
export function pretrain(config: PretrainConfig, opts: PretrainOptions = {}): PretrainResult {
  checkPretrainConfig(config);
  const cfg = absolutePaths(config);
  const stream = opts.stream ?? process.stderr;
  const note = (line: string) => stream.write(`${line}\n`);
  const stamps = stampCorpus(cfg.corpus);
  const out = cfg.out;
  const runOpts = {
    outDir: out,
    config: cfg,
    resume: opts.resume,
    forceConfig: opts.forceConfig,
    log: note,
    defaults: pretrainDefaults,
  };
  const resuming = openRun('pretrain', runOpts);
  let tokenizer: Tokenizer | null = null;
  if (cfg.tokenizer !== null) tokenizer = Tokenizer.fromDir(cfg.tokenizer);
  else if (resuming) tokenizer = Tokenizer.fromDir(out);

  mkdirSync(join(out, 'data'), { recursive: true });
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
    const trainer = new PretrainTrainer(cfg, tokenizer, tokens, trainCount, hash);
    note(
      `model: ${cfg.model} ${cfg.size}, ${trainer.parameters.toLocaleString('en-US')} parameters, vocab ${tokenizer.vocabSize}, context ${T}`,
    );
    try {
      const run = runTrainer(trainer, resuming, { ...runOpts, handleSignals: opts.handleSignals });
      if (run.stopped) return { ...trainer.result(run.resumedFrom), stopped: true };
      // Resumed at the last step: nothing ran in this process.
      if (!Number.isFinite(trainer.valLoss)) trainer.valLoss = trainer.validate();
      savePretrained(trainer.model, cfg.out, { dtype: cfg.saveDtype });
      note(`saved the model to ${cfg.out} (val loss ${trainer.valLoss.toFixed(4)})`);
      return { ...trainer.result(run.resumedFrom), stopped: false };
    } finally {
      trainer.dispose();
    }
  } finally {
    tokens.close();
  }
}

/** Next-token prediction on random windows of the token file; validation on the held-out tail. */
class PretrainTrainer implements Trainer<null> {
  readonly stage = 'pretrain';
  readonly model: CausalLM;
  readonly parts: TrainedPart[];
  readonly rngs: Record<string, Rng>;
  readonly totalSteps: number;
  readonly totalUpdates: number;
  readonly parameters: number;
  initialValLoss: number | null = null;
  valLoss = Number.NaN;
  private readonly dataRng: Rng;
  private readonly x: Tensor;
  private readonly y: Tensor;
  private readonly window: Int32Array;
  private readonly valWindows: number;

  constructor(
    private readonly cfg: PretrainConfig,
    tokenizer: Tokenizer,
    private readonly tokens: TokenFile,
    private readonly trainCount: number,
    private readonly hash: string,
  ) {
    const modelRng = new Rng(cfg.seed);
    // A separate stream for the windows, so that the data order does not depend on the model's size.
    this.dataRng = new Rng((cfg.seed ^ 0x9e3779b9) >>> 0);
    this.model = buildModel(cfg, tokenizer.vocabSize, tokenIdsOf(tokenizer), modelRng);
    this.parameters = this.model.numParameters();
    this.parts = [{ name: 'model', module: this.model, lr: cfg.lr, gradNormMetric: METRIC.gradNorm }];
    this.rngs = { data: this.dataRng, model: modelRng };
    this.totalSteps = this.totalUpdates = cfg.steps;
    const { batchSize: B, seq: T } = cfg;
    this.x = Tensor.empty([B, T], 'i32');
    this.y = Tensor.empty([B, T], 'i32');
    this.window = new Int32Array(T + 1);
    this.valWindows = Math.min(cfg.evalBatches * B, Math.floor((tokens.count - trainCount - 1) / T));
    this.model.train();
  }

  private fill(row: number, offset: number): void {
    const T = this.cfg.seq;
    this.tokens.read(offset, T + 1, this.window);
    this.x.i32.set(this.window.subarray(0, T), row * T);
    this.y.i32.set(this.window.subarray(1), row * T);
  }

  *updates(): Iterable<null[]> {
    yield [null];
  }

  step(): StepOutput {
    const { batchSize: B, seq: T } = this.cfg;
    for (let b = 0; b < B; b++) this.fill(b, this.dataRng.int(this.trainCount - T));
    const logits = this.model.forward(this.x);
    const loss = crossEntropy(reshape(logits, [-1, logits.size(-1)]), reshape(this.y, [-1]));
    return { loss, tokens: B * T };
  }

  /** Mean loss per token over the held-out windows. */
  validate(): number {
    const { batchSize: B, seq: T } = this.cfg;
    this.model.eval();
    let sum = 0;
    for (let w = 0; w < this.valWindows; w += B) {
      const rows = Math.min(B, this.valWindows - w);
      for (let r = 0; r < rows; r++) this.fill(r, this.trainCount + (w + r) * T);
      sum += noGrad(() =>
        tidy(() =>
          autocast(this.cfg.bf16 ? 'bf16' : 'f32', () => {
            const ids = rows === B ? this.x : Tensor.fromBuffer(this.x.i32.slice(0, rows * T), [rows, T]);
            const targets = rows === B ? this.y : Tensor.fromBuffer(this.y.i32.slice(0, rows * T), [rows, T]);
            const logits = this.model.forward(ids);
            return crossEntropy(reshape(logits, [-1, logits.size(-1)]), reshape(targets, [-1]), {
              reduction: 'sum',
            }).item();
          }),
        ),
      );
    }
    this.model.train();
    return sum / (this.valWindows * T);
  }

  evaluate(step: number): Metrics | null {
    if (step > 0 && step % this.cfg.evalEvery !== 0 && step !== this.cfg.steps) return null;
    this.valLoss = this.validate();
    if (step === 0) this.initialValLoss = this.valLoss;
    return { [METRIC.evalLoss]: this.valLoss };
  }

  status(m: Metrics): string {
    const val = Number.isFinite(this.valLoss) ? ` val ${this.valLoss.toFixed(4)}` : '';
    const tps = Math.round(Number(m[METRIC.tokensPerSecond])).toLocaleString('en-US');
    return `loss ${Number(m[METRIC.trainLoss]).toFixed(4)}${val} lr ${Number(m[METRIC.lr]).toExponential(2)} ${tps} tok/s`;
  }

  saveState() {
    return { state: { tokenizer: this.hash, tokens: this.tokens.count } };
  }

  loadState(state: Record<string, unknown>): void {
    if (state.tokenizer !== this.hash || state.tokens !== this.tokens.count)
      throw new Error(
        `${join(this.cfg.out, 'checkpoints')}: the checkpoint was trained on ${state.tokens} tokens from tokenizer ${state.tokenizer}, now ${this.tokens.count} from ${this.hash}; the corpus or tokenizer changed`,
      );
  }

  result(resumedFrom: number | null): Omit<PretrainResult, 'stopped'> {
    return {
      out: this.cfg.out,
      parameters: this.parameters,
      resumedFrom,
      initialValLoss: this.initialValLoss,
      finalValLoss: this.valLoss,
    };
  }

  dispose(): void {
    this.x.dispose();
    this.y.dispose();
  }
}
