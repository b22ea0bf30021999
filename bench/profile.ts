// `node dist/bench/profile.js [f32|bf16|sample] [ref|gpt2-124m]`: where one training step of a benchmark GPT
// spends its time, or (sample) where decoding does: prefill and 127 decode steps, each kernel's share.
// Run with INSTRUCTKIT_PROFILE=1 (npm run profile does).

import { GPT2, generate } from '../src/models/index.js';
import { type ProfileRow, profileReport, Rng, resetProfile } from '../src/tensor/index.js';
import { BENCH_MODELS, type Phases, trainingStep } from './models.js';

const mode = (process.argv[2] ?? 'f32') as 'f32' | 'bf16' | 'sample';
const which = (process.argv[3] ?? 'ref') as keyof typeof BENCH_MODELS;
const { config, batch } = BENCH_MODELS[which];

function printKernels(rows: ProfileRow[], per: number, total: number): void {
  let kernels = 0;
  for (const r of rows) {
    kernels += r.ms / per;
    console.log(
      `  ${r.kernel.padEnd(22)} ${(r.ms / per).toFixed(2).padStart(8)} ms  ${String(r.calls / per).padStart(6)} calls`,
    );
  }
  console.log(`  kernels total ${kernels.toFixed(1)} ms, outside kernels ${(total - kernels).toFixed(1)} ms`);
}

if (mode === 'sample') {
  const model = new GPT2(config, new Rng(0)).eval();
  const rng = new Rng(3);
  const prompts = Array.from({ length: batch }, () => Array.from({ length: 128 }, () => rng.int(config.vocabSize)));
  const run = (n: number) => generate(model, prompts, { maxNewTokens: n, temperature: 1, seed: 1 });
  run(128);
  // Prefill (with its first token) alone, then the whole run: the difference is 127 decode steps.
  const timed = (n: number) => {
    resetProfile();
    const t0 = performance.now();
    run(n);
    return { ms: performance.now() - t0, rows: profileReport() };
  };
  const prefill = timed(1);
  const all = timed(128);
  const decodeMs = all.ms - prefill.ms;
  console.log(
    `${which} sampling, batch ${batch}: prefill ${prefill.ms.toFixed(1)} ms, decode ${(decodeMs / 127).toFixed(3)} ms/step, ` +
      `${((batch * 128 * 1000) / all.ms).toFixed(0)} tok/s incl. prefill`,
  );
  const before = new Map(prefill.rows.map((r) => [r.kernel, r]));
  const decodeRows = all.rows
    .map((r) => ({
      ...r,
      ms: r.ms - (before.get(r.kernel)?.ms ?? 0),
      calls: r.calls - (before.get(r.kernel)?.calls ?? 0),
    }))
    .sort((a, b) => b.ms - a.ms);
  console.log('per decode step:');
  printKernels(decodeRows, 127, decodeMs / 127);
} else {
  const phases: Phases = { forward: 0, backward: 0, optimizer: 0 };
  const step = trainingStep(config, batch, mode, phases);
  const T = config.nPositions;
  step();
  resetProfile();
  for (const k of Object.keys(phases) as (keyof typeof phases)[]) phases[k] = 0;
  const steps = 5;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const total = (performance.now() - t0) / steps;
  console.log(`${which} ${mode}: ${total.toFixed(1)} ms/step, ${(((batch * T) / total) * 1000).toFixed(0)} tok/s`);
  for (const [k, v] of Object.entries(phases)) console.log(`  ${k.padEnd(10)} ${(v / steps).toFixed(1)} ms`);
  printKernels(profileReport(), steps, total);
}
