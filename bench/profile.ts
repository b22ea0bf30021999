// `node dist/bench/profile.js [f32|bf16] [ref|gpt2-124m]`: where one training step of a benchmark GPT spends its time.
// Run with INSTRUCTKIT_PROFILE=1 (npm run profile does).

import { GPT2 } from '../src/models/gpt2.js';
import { AdamW } from '../src/nn/index.js';
import {
  autocast,
  backward,
  crossEntropy,
  profileReport,
  Rng,
  resetProfile,
  reshape,
  Tensor,
  tidy,
} from '../src/tensor/index.js';
import { BENCH_MODELS } from './models.js';

const dtype = (process.argv[2] ?? 'f32') as 'f32' | 'bf16';
const which = (process.argv[3] ?? 'ref') as keyof typeof BENCH_MODELS;
const { config, batch } = BENCH_MODELS[which];
const model = new GPT2(config, new Rng(0));
const opt = new AdamW(model.parameters(), { lr: 3e-4, weightDecay: 0.1 });
const rng = new Rng(1);
const T = config.nPositions;
const x = Tensor.empty([batch, T], 'i32');
const y = Tensor.empty([batch, T], 'i32');
for (let i = 0; i < batch * T; i++) {
  x.i32[i] = rng.int(config.vocabSize);
  y.i32[i] = rng.int(config.vocabSize);
}
const phases = { forward: 0, backward: 0, optimizer: 0 };
const step = () =>
  tidy(() =>
    autocast(dtype, () => {
      let t = performance.now();
      const logits = model.forward(x);
      const loss = crossEntropy(reshape(logits, [-1, config.vocabSize]), reshape(y, [-1]));
      phases.forward += performance.now() - t;
      t = performance.now();
      opt.zeroGrad();
      backward(loss);
      phases.backward += performance.now() - t;
      t = performance.now();
      opt.step();
      phases.optimizer += performance.now() - t;
    }),
  );
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
