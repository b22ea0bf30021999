// `node dist/bench/trainers.js TRAINER MODE [DIR]`: one training step of sft, rm, dpo, ppo or grpo at GPT-2-124M
// shapes (tied head, random weights) on 4 rows of 256 tokens, in this process alone; prints one JSON line with
// tokens/s and the process's peak resident memory (PPO: also its checkpoint's size). MODE: full, lora, bf16
// (--bf16: bf16 autocast, and the frozen models — reference, reward model — held in bf16) or lora_bf16 (both: the
// frozen bases held in bf16 too). PPO and GRPO also time
// plain sampling (generate) of the same policy at the same batch, before their step (which warms the kernels for
// the rollout too) and after it, and report their rollout's sampling rate against the later (rollout_vs_sampling)
// and the whole rollout's (sampling + scoring by every model, rollout_total_vs_sampling). `node dist/bench/trainers.js prepare DIR` writes
// the GRPO model folder (grpo reads a folder as `instructkit grpo` does). `npm run bench -- --trainers` runs each in
// a fresh process. Random weights: this measures memory and speed, not learning.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CausalLM,
  GPT2,
  generate,
  gpt2Defaults,
  loadPretrained,
  ScalarModel,
  savePretrained,
} from '../src/models/index.js';
import { applyLora, type LoraConfig } from '../src/models/lora.js';
import { AdamW, clipGradNorm, type Module } from '../src/nn/index.js';
import { inlinePrompts } from '../src/rlhf/data.js';
import { cacheReferenceLogps, dpoBatch } from '../src/rlhf/dpo.js';
import { grpoDefaults, trainGrpo } from '../src/rlhf/grpo.js';
import { PPOTrainer, ppoDefaults } from '../src/rlhf/ppo.js';
import { rmBatchLoss } from '../src/rlhf/reward.js';
import { rewardModelFn, valueOnRewardModel } from '../src/rlhf/reward_fn.js';
import { sftLoss } from '../src/rlhf/sft.js';
import { autocast, backward, Rng, type Tensor, tidy } from '../src/tensor/index.js';
import { Formatter, trainBpe } from '../src/tokenizer/index.js';
import { METRIC, type Metrics } from '../src/train/metrics.js';

export const TRAINERS = ['sft', 'rm', 'dpo', 'ppo', 'grpo'] as const;
export type TrainerName = (typeof TRAINERS)[number];
export type Mode = 'full' | 'lora' | 'bf16' | 'lora_bf16';
/** The modes each trainer is measured in: bf16 where frozen models are held in bf16. */
export const MODES: Record<TrainerName, Mode[]> = {
  sft: ['full', 'lora'],
  rm: ['full', 'lora'],
  dpo: ['full', 'lora', 'bf16', 'lora_bf16'],
  ppo: ['full', 'lora', 'bf16', 'lora_bf16'],
  grpo: ['full', 'lora', 'bf16', 'lora_bf16'],
};

const ROWS = 4;
const SEQ = 256;
const config = { ...gpt2Defaults, residPdrop: 0, embdPdrop: 0 };
const lora: LoraConfig = { r: 16, alpha: 32, dropout: 0, targets: null }; // GPT-2's c_attn
const loraFields = { loraR: lora.r, loraAlpha: lora.alpha, loraDropout: 0 };

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  return n;
}

const peakMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

// One optimizer step the way the epoch loop takes it: loss, backward, clip, AdamW over what trains.
function epochLoopStep(model: Module, loss: () => Tensor, dtype: 'f32' | 'bf16' = 'f32'): number {
  const opt = new AdamW(model.trainableParameters(), { lr: 1e-5 });
  const t0 = performance.now();
  tidy(() => autocast(dtype, () => backward(loss())));
  clipGradNorm(model.trainableParameters(), 1);
  opt.step();
  model.zeroGrad();
  return (performance.now() - t0) / 1000;
}

function randomRows(n: number, rng: Rng): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: SEQ }, () => 1 + rng.int(config.vocabSize - 1)));
}

// A prompt of about half the window in a small BPE's tokens; the rest of the window is sampled.
function benchPrompt() {
  const tokenizer = trainBpe(['the river runs past the mill'], { vocabSize: 280, minFrequency: 1 });
  const prompt = Array.from({ length: SEQ / 2 }, (_, i) => (i % 2 ? 'river' : 'mill')).join(' ');
  const formatter = new Formatter(tokenizer, 'bench tokenizer');
  return { tokenizer, formatter, prompt, maxNewTokens: SEQ - formatter.prompt(prompt).length };
}

/** Plain sampling of ROWS copies of the prompt by `model` (warm: a short call first), in tokens/s. */
function samplingTokS(model: CausalLM, b: ReturnType<typeof benchPrompt>): number {
  const prompts = Array.from({ length: ROWS }, () => b.formatter.prompt(b.prompt));
  const opts = { temperature: 1, seed: 3, eosTokenIds: [b.formatter.eosId], padTokenId: b.formatter.padId };
  generate(model, prompts, { ...opts, maxNewTokens: 2 });
  const t0 = performance.now();
  const gen = generate(model, prompts, { ...opts, maxNewTokens: b.maxNewTokens });
  return gen.tokens.reduce((n, t) => n + t.length, 0) / ((performance.now() - t0) / 1000);
}

/**
 * The rollout's figures from a step's metrics, against plain sampling timed before the step (the kernels' and
 * buffers' first full-length run) and after it (warm, as the rollout is): the ratios use the later one.
 */
function rolloutFigures(m: Metrics, first: number, plain: number) {
  const tokens = Number(m[METRIC.rolloutTokensPerSecond]) * Number(m[METRIC.generateSeconds]);
  const rollout = Number(m[METRIC.rolloutTokensPerSecond]);
  const total = tokens / Number(m[METRIC.rolloutSeconds]);
  return {
    sampling_first_tok_s: Math.round(first),
    sampling_tok_s: Math.round(plain),
    rollout_tok_s: Math.round(rollout),
    rollout_total_tok_s: Math.round(total),
    rollout_vs_sampling: Number((rollout / plain).toFixed(3)),
    rollout_total_vs_sampling: Number((total / plain).toFixed(3)),
  };
}

type Figures = Record<string, number | string | boolean>;

async function run(trainer: TrainerName, mode: Mode, dir?: string): Promise<Figures> {
  const rng = new Rng(5);
  const withLora = mode === 'lora' || mode === 'lora_bf16';
  const bf16 = mode === 'bf16' || mode === 'lora_bf16';
  if (trainer === 'sft') {
    const model = new GPT2(config, new Rng(0)).train();
    if (withLora) applyLora(model, lora);
    const examples = randomRows(ROWS, rng).map((ids) => ({ ids, promptLength: SEQ / 2, file: 'bench', line: 0 }));
    const s = epochLoopStep(model, () => sftLoss(model, examples, 0));
    return { tok_s: Math.round((ROWS * SEQ) / s), peak_rss_mb: peakMb() };
  }
  if (trainer === 'rm') {
    const rm = new ScalarModel(new GPT2(config, new Rng(0)), new Rng(1)).train();
    if (withLora) applyLora(rm, lora);
    const rows = randomRows(ROWS, rng);
    const pairs = [0, 2].map((i) => ({
      sequences: [rows[i], rows[i + 1]],
      promptLength: 1,
      ranking: [0, 1],
      file: 'bench',
      line: 0,
    }));
    const s = epochLoopStep(rm, () => rmBatchLoss(rm, pairs, 0, 0).loss);
    return { tok_s: Math.round((ROWS * SEQ) / s), peak_rss_mb: peakMb() };
  }
  if (trainer === 'dpo') {
    // Two pairs (4 rows); the reference's log-probs cached first, as trainDpo does (with --bf16 under autocast).
    const model = new GPT2(config, new Rng(0));
    if (withLora) applyLora(model, lora, { frozenDtype: bf16 ? 'bf16' : 'f32' });
    const rows = randomRows(ROWS, rng);
    const pairs = [0, 2].map((i) => ({
      chosen: rows[i],
      rejected: rows[i + 1],
      promptLength: SEQ / 2,
      refChosen: 0,
      refRejected: 0,
      file: 'bench',
      line: 0,
    }));
    const dtype = bf16 ? 'bf16' : 'f32';
    const t0 = performance.now();
    autocast(dtype, () => cacheReferenceLogps(model, pairs, { batchSize: 2, padId: 0, average: false }));
    const ref = (performance.now() - t0) / 1000;
    model.train();
    const loss = { beta: 0.1, lossType: 'sigmoid' as const, labelSmoothing: 0 };
    const s = epochLoopStep(model, () => dpoBatch(model, pairs, 0, loss).loss, dtype);
    return {
      tok_s: Math.round((ROWS * SEQ) / s),
      ref_pass_tok_s: Math.round((ROWS * SEQ) / ref),
      peak_rss_mb: peakMb(),
    };
  }
  const b = benchPrompt();
  if (trainer === 'grpo') {
    // One prompt × G = 4 completions, from the folder `prepare` wrote; KL to the reference (β 0.04).
    if (!dir) throw new Error('grpo: give the model folder that `prepare` wrote');
    const plainSampling = () => {
      const probe = loadPretrained(dir);
      const rate = samplingTokS(probe, b);
      for (const t of probe.parameters()) t.dispose();
      return rate;
    };
    const first = plainSampling();
    const out = mkdtempSync(join(tmpdir(), 'ik-bench-grpo-'));
    let metrics: Metrics = {};
    const stop = new AbortController();
    const t0 = performance.now();
    await trainGrpo({
      policyDir: dir,
      prompts: inlinePrompts([b.prompt]),
      outDir: out,
      config: {
        ...grpoDefaults,
        batchSize: 1,
        groupSize: ROWS,
        miniBatchSize: ROWS,
        maxNewTokens: b.maxNewTokens,
        sampleEvery: 0,
        bf16,
        ...(withLora ? loraFields : {}),
      },
      verifier: (_p, c) => c.length % 3,
      signal: stop.signal,
      quiet: true,
      log: () => {},
      onStep: (_s, m) => {
        metrics = m;
        stop.abort(); // one step, then a checkpoint
      },
    });
    const s = (performance.now() - t0) / 1000;
    const peak = peakMb();
    rmSync(out, { recursive: true, force: true });
    return {
      tok_s: Math.round((ROWS * SEQ) / s),
      peak_rss_mb: peak,
      ...rolloutFigures(metrics, first, plainSampling()),
    };
  }
  // PPO: prompts of 128 tokens, 128 sampled; policy, value and reward model, and (full) a reference copy.
  const out = mkdtempSync(join(tmpdir(), 'ik-bench-ppo-'));
  const make = (seed: number) => new GPT2(config, new Rng(seed));
  // As `instructkit ppo` does: the value model started from the reward model, a copy of it, or with LoRA its trunk
  // shared; with --bf16 the reference and the reward model held in bf16 (and with LoRA the frozen bases).
  const rm = new ScalarModel(make(2));
  const { value, reward } = withLora
    ? valueOnRewardModel(bf16 ? rm.toDtype('bf16') : rm, 0, lora, 1)
    : { value: new ScalarModel(make(2)), reward: rewardModelFn(bf16 ? rm.toDtype('bf16') : rm, 0) };
  const policy = make(1);
  const first = samplingTokS(policy, b);
  const trainer_ = new PPOTrainer({
    policy,
    ref: withLora ? undefined : bf16 ? make(1).toDtype('bf16') : make(1),
    value,
    reward,
    formatter: b.formatter,
    prompts: inlinePrompts([b.prompt]),
    config: {
      ...ppoDefaults,
      batchSize: ROWS,
      miniBatchSize: ROWS,
      ppoEpochs: 1,
      maxNewTokens: b.maxNewTokens,
      sampleEvery: 0,
      bf16,
      ...(withLora ? loraFields : {}),
    },
    outDir: out,
    quiet: true,
  });
  const t0 = performance.now();
  const [metrics] = trainer_.train({ stopAfter: 1 });
  const s = (performance.now() - t0) / 1000;
  const peak = peakMb();
  const ckpt = dirBytes(join(out, 'checkpoints'));
  rmSync(out, { recursive: true, force: true });
  return {
    tok_s: Math.round((ROWS * SEQ) / s),
    peak_rss_mb: peak,
    checkpoint_mb: Math.round(ckpt / 1e6),
    ...rolloutFigures(metrics, first, samplingTokS(policy, b)),
  };
}

/** Writes the random GPT-2-124M folder (with the bench tokenizer) that the grpo measurement trains from. */
function prepare(dir: string): void {
  savePretrained(new GPT2(config, new Rng(1)), dir);
  benchPrompt().tokenizer.save(dir);
}

if (process.argv[1]?.endsWith('trainers.js') && process.argv[2]) {
  const [what, mode, dir] = process.argv.slice(2);
  if (what === 'prepare') prepare(mode);
  else {
    const trainer = what as TrainerName;
    if (!TRAINERS.includes(trainer)) throw new Error(`trainer must be one of ${TRAINERS.join(', ')}, got ${trainer}`);
    if (!MODES[trainer].includes(mode as Mode))
      throw new Error(`${trainer}: mode must be one of ${MODES[trainer].join(', ')}, got ${mode}`);
    const result = await run(trainer, mode as Mode, dir);
    console.log(JSON.stringify({ trainer, mode, ...result }));
  }
}
