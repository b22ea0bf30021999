// `node dist/bench/profile.js [f32|bf16] [ref|gpt2-124m]`: where one training step of a benchmark GPT spends its time.
// Run with INSTRUCTKIT_PROFILE=1 (npm run profile does).

import { profileReport, resetProfile } from '../src/tensor/index.js';
import { BENCH_MODELS, type Phases, trainingStep } from './models.js';

const dtype = (process.argv[2] ?? 'f32') as 'f32' | 'bf16';
const which = (process.argv[3] ?? 'ref') as keyof typeof BENCH_MODELS;
const { config, batch } = BENCH_MODELS[which];
const phases: Phases = { forward: 0, backward: 0, optimizer: 0 };
const step = trainingStep(config, batch, dtype, phases);
const T = config.nPositions;
step();
resetProfile();
for (const k of Object.keys(phases) as (keyof typeof phases)[]) phases[k] = 0;
const steps = 5;
const t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const total = (performance.now() - t0) / steps;
console.log(`${which} ${dtype}: ${total.toFixed(1)} ms/step, ${(((batch * T) / total) * 1000).toFixed(0)} tok/s`);
for (const [k, v] of Object.entries(phases)) console.log(`  ${k.padEnd(10)} ${(v / steps).toFixed(1)} ms`);
let kernels = 0;
for (const r of profileReport()) {
  kernels += r.ms / steps;
  console.log(
    `  ${r.kernel.padEnd(22)} ${(r.ms / steps).toFixed(2).padStart(8)} ms  ${String(r.calls / steps).padStart(5)} calls`,
  );
}
console.log(`  kernels total ${kernels.toFixed(1)} ms, outside kernels ${(total - kernels).toFixed(1)} ms`);
