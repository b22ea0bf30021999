// `npm run bench [-- --vs-torch] [-- --vs-llama]`: matmul GFLOPS and reference-GPT training tokens/s (f32 and bf16
// autocast), sampling. With --vs-torch the PyTorch reference runs in the same command and the ratios are printed;
// with --vs-llama decode at GPT-2-124M shapes runs beside llama.cpp (node-llama-cpp) on the same models exported to
// GGUF (--repeats rounds, default 3; --decode-only skips the rest). trainers_124m: one step of each trainer at
// GPT-2-124M shapes (sft, rm, dpo, ppo, grpo; full, LoRA and bf16 frozen models), each in a fresh process (tok/s, peak
// RSS; PPO and GRPO their rollout against plain sampling); `--trainers` runs only that section,
// `--skip-trainers` leaves it out. The last line is JSON.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generate } from '../src/models/generate.js';
import { GPT2, type GPT2Config } from '../src/models/gpt2.js';
import { getThreads, native, Rng, randn, Tensor, tidy, toBf16 } from '../src/tensor/index.js';
import { decodeBench } from './decode.js';
import { BENCH_MODELS, trainingStep } from './models.js';
import { runTorch } from './torch.js';
import { MODES, TRAINERS } from './trainers.js';

const { values: args } = parseArgs({
  options: {
    'vs-torch': { type: 'boolean', default: false },
    steps: { type: 'string', default: '7' },
    'skip-124m': { type: 'boolean', default: false },
    'vs-llama': { type: 'boolean', default: false },
    'decode-only': { type: 'boolean', default: false },
    repeats: { type: 'string', default: '3' },
    trainers: { type: 'boolean', default: false },
    'skip-trainers': { type: 'boolean', default: false },
  },
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeIt(reps: number, fn: () => void): number {
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts) / 1000;
}

function matmulGflops(n: number, dtype: 'f32' | 'bf16'): number {
  return tidy(() => {
    const rng = new Rng(1);
    let a = randn([n, n], rng);
    let b = randn([n, n], rng);
    if (dtype === 'bf16') {
      a = toBf16(a);
      b = toBf16(b);
    }
    const c = Tensor.empty([n, n]);
    const run = () => native.matmul(a.buffer, b.buffer, c.f32, 1, 1, 1, n, n, n, false, false, false, dtype === 'bf16');
    run();
    return (2 * n ** 3) / timeIt(7, run) / 1e9;
  });
}

// Prompt 128, 128 new tokens, temperature 1 from the full distribution, the benchmark's batch (8 for the reference
// GPT, 4 at GPT-2-124M shapes, as the PyTorch side); the clock includes the prefill.
function sampleTokS(cfg: GPT2Config, batch: number): number {
  const model = new GPT2(cfg, new Rng(0)).eval();
  const rng = new Rng(3);
  const prompts = Array.from({ length: batch }, () => Array.from({ length: 128 }, () => rng.int(cfg.vocabSize)));
  const run = () => generate(model, prompts, { maxNewTokens: 128, temperature: 1, seed: 1 });
  run();
  return (batch * 128) / timeIt(3, run);
}

function trainTokS(cfg: GPT2Config, batch: number, dtype: 'f32' | 'bf16', steps: number): number {
  const step = trainingStep(cfg, batch, dtype);
  step();
  step();
  return (batch * cfg.nPositions) / timeIt(steps, step);
}

const threads = getThreads();
console.log(`instructkit bench — ${threads} threads`);
const result: Record<string, number | string> = { threads };

function engineBench(): void {
  const mm: Record<string, number> = {};
  for (const n of [1024, 2048])
    for (const dt of ['f32', 'bf16'] as const) {
      mm[`${dt}_${n}`] = matmulGflops(n, dt);
      console.log(`matmul ${dt} ${n}³: ${mm[`${dt}_${n}`].toFixed(0)} GFLOPS`);
    }
  const steps = Number(args.steps);
  const ref = BENCH_MODELS.ref;
  const trainF32 = trainTokS(ref.config, ref.batch, 'f32', steps);
  console.log(`reference GPT train f32: ${trainF32.toFixed(0)} tok/s`);
  const trainBf16 = trainTokS(ref.config, ref.batch, 'bf16', steps);
  console.log(`reference GPT train bf16: ${trainBf16.toFixed(0)} tok/s`);
  // Peak RSS while training the reference GPT (the 124M runs below need more, by design).
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const sample = sampleTokS(ref.config, ref.batch);
  console.log(`reference GPT sampling (batch 8, prompt 128, 128 new, incl. prefill): ${sample.toFixed(0)} tok/s`);

  Object.assign(result, {
    matmul_f32_1024_gflops: Math.round(mm.f32_1024),
    matmul_f32_2048_gflops: Math.round(mm.f32_2048),
    matmul_bf16_1024_gflops: Math.round(mm.bf16_1024),
    matmul_bf16_2048_gflops: Math.round(mm.bf16_2048),
    train_f32_tok_s: Math.round(trainF32),
    train_bf16_tok_s: Math.round(trainBf16),
    sample_tok_s: Math.round(sample),
    peak_rss_mb: Math.round(peakRssMb),
  });
  let big: { train: number; sample: number } | null = null;
  if (!args['skip-124m']) {
    const m = BENCH_MODELS['gpt2-124m'];
    big = { train: trainTokS(m.config, m.batch, 'f32', 3), sample: sampleTokS(m.config, m.batch) };
    console.log(`GPT-2-124M train f32: ${big.train.toFixed(0)} tok/s, sampling: ${big.sample.toFixed(0)} tok/s`);
    Object.assign(result, { train_f32_124m_tok_s: Math.round(big.train), sample_124m_tok_s: Math.round(big.sample) });
  }
  if (args['vs-torch']) {
    console.log('running the PyTorch reference ...');
    const t = runTorch(threads, 'ref');
    process.stdout.write(t.raw);
    Object.assign(result, {
      torch_train_f32_tok_s: t.trainF32,
      torch_train_bf16_tok_s: t.trainBf16,
      ratio_train_f32: +(trainF32 / t.trainF32).toFixed(3),
      ratio_train_bf16: +(trainBf16 / t.trainBf16).toFixed(3),
      torch_sample_tok_s: t.sample,
      ratio_sample: +(sample / t.sample).toFixed(3),
    });
    if (big) {
      console.log('running the PyTorch reference at GPT-2-124M shapes ...');
      const t124 = runTorch(threads, 'gpt2-124m');
      process.stdout.write(t124.raw);
      Object.assign(result, {
        torch_train_f32_124m_tok_s: t124.trainF32,
        torch_sample_124m_tok_s: t124.sample,
        ratio_train_f32_124m: +(big.train / t124.trainF32).toFixed(3),
        ratio_sample_124m: +(big.sample / t124.sample).toFixed(3),
      });
    }
  }
}

// One step of each trainer in each of its modes (full, LoRA, bf16 frozen models), each in a process of its own so
// that peak RSS is that trainer's alone; grpo trains from a model folder written first by a process of its own.
function trainers124m(): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  const folder = mkdtempSync(join(tmpdir(), 'ik-bench-124m-'));
  const script = join(import.meta.dirname, 'trainers.js');
  try {
    execFileSync(process.execPath, [script, 'prepare', folder], { stdio: ['ignore', 'ignore', 'inherit'] });
    for (const trainer of TRAINERS)
      for (const mode of MODES[trainer]) {
        const text = execFileSync(process.execPath, [script, trainer, mode, folder], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const { trainer: _t, mode: _m, ...figures } = JSON.parse(text.trim().split('\n').pop()!);
        out[`${trainer}_${mode}`] = figures;
        const rollout =
          figures.rollout_vs_sampling === undefined
            ? ''
            : `; rollout sampling ${figures.rollout_tok_s} tok/s vs plain ${figures.sampling_tok_s} ` +
              `(${figures.rollout_vs_sampling}×, whole rollout ${figures.rollout_total_vs_sampling}×)`;
        console.log(
          `trainers_124m ${trainer} ${mode}: ${figures.tok_s} tok/s, peak RSS ${figures.peak_rss_mb} MB` +
            (figures.checkpoint_mb === undefined ? '' : `, checkpoint ${figures.checkpoint_mb} MB`) +
            rollout,
        );
      }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  return out;
}

if (args.trainers) {
  console.log(
    'one step per trainer and mode at GPT-2-124M shapes (batch 4 × 256, random weights), a fresh process each:',
  );
  console.log(JSON.stringify({ threads, trainers_124m: trainers124m() }));
  process.exit(0);
}
if (!args['decode-only']) engineBench();
if (!args['skip-trainers'] && !args['decode-only']) result.trainers_124m = trainers124m() as never;
if (args['vs-llama'] || args['decode-only']) {
  const repeats = Number(args.repeats);
  if (!(Number.isInteger(repeats) && repeats >= 1))
    throw new Error(`--repeats: expected an integer >= 1, got ${args.repeats}`);
  console.log(`decode at GPT-2-124M shapes, ${repeats} round(s)${args['vs-llama'] ? ' beside llama.cpp' : ''} ...`);
  const d = await decodeBench(threads, repeats, args['vs-llama']);
  for (const line of d.lines.slice(-2)) console.log(line);
  Object.assign(result, d.result);
}
console.log(JSON.stringify(result));
