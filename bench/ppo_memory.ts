// `node dist/bench/ppo_memory.js [steps]`: PPO-ptx with all four models at GPT-2-124M size (policy, frozen
// reference, reward model, value model) on this machine; prints the peak resident memory. Random weights: this
// measures memory and step time, not learning.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT2, gpt2Defaults, ScalarModel } from '../src/models/index.js';
import { inlinePrompts } from '../src/rlhf/data.js';
import { PPOTrainer, ppoDefaults } from '../src/rlhf/ppo.js';
import { rewardModelFn } from '../src/rlhf/reward_fn.js';
import { Rng } from '../src/tensor/index.js';
import { Formatter, trainBpe } from '../src/tokenizer/index.js';

const steps = Number(process.argv[2] ?? 2);
const text = 'the river runs past the mill and the town sleeps under the hill while the baker sings';
const tokenizer = trainBpe([text, text.split(' ').reverse().join(' ')], { vocabSize: 300, minFrequency: 1 });
const config = { ...gpt2Defaults, nPositions: 256, residPdrop: 0, embdPdrop: 0 };
const make = (seed: number) => new GPT2(config, new Rng(seed));
const out = mkdtempSync(join(tmpdir(), 'ik-ppo-mem-'));
const t0 = performance.now();
const trainer = new PPOTrainer({
  policy: make(1),
  ref: make(1),
  value: new ScalarModel(make(2)),
  reward: rewardModelFn(new ScalarModel(make(3)), tokenizer.eosId ?? 0),
  formatter: new Formatter(tokenizer, 'bench tokenizer'),
  prompts: inlinePrompts([
    'the river',
    'the town',
    'under the hill',
    'the baker',
    'past the mill',
    'sings',
    'the',
    'hill',
  ]),
  ptxTokens: tokenizer.encode(text.repeat(20), { addSpecialTokens: false }),
  config: {
    ...ppoDefaults,
    batchSize: 8,
    miniBatchSize: 4,
    ppoEpochs: 1,
    maxNewTokens: 32,
    sampleEvery: 0,
    saveEvery: 1000,
    ptxSeqLen: 64,
    ptxBatchSize: 2,
  },
  outDir: out,
  quiet: true,
});
trainer.train({ stopAfter: steps });
const peak = process.resourceUsage().maxRSS / 1024;
console.log(
  JSON.stringify({
    model: 'gpt2-124m',
    models: 4,
    steps,
    s_per_step: +((performance.now() - t0) / 1000 / steps).toFixed(1),
    peak_rss_mb: Math.round(peak),
  }),
);
trainer.dispose();
rmSync(out, { recursive: true, force: true });
