// `node dist/bench/trainers.js TRAINER full|lora`: one training step of sft, rm or ppo at GPT-2-124M shapes (tied
// head, random weights) on 4 rows of 256 tokens, in this process alone; prints one JSON line with tokens/s and the
// process's peak resident memory (and for PPO the size of its checkpoint). `npm run bench -- --trainers` runs each in
// a fresh process. Random weights: this measures memory and step time, not learning.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT2, gpt2Defaults, ScalarModel } from '../src/models/index.js';
import { applyLora, type LoraConfig } from '../src/models/lora.js';
import { AdamW, clipGradNorm, type Module } from '../src/nn/index.js';
import { inlinePrompts } from '../src/rlhf/data.js';
import { PPOTrainer, ppoDefaults } from '../src/rlhf/ppo.js';
import { rmBatchLoss } from '../src/rlhf/reward.js';
import { rewardModelFn, valueOnRewardModel } from '../src/rlhf/reward_fn.js';
import { sftLoss } from '../src/rlhf/sft.js';
import { backward, Rng, type Tensor, tidy } from '../src/tensor/index.js';
import { Formatter, trainBpe } from '../src/tokenizer/index.js';

export const TRAINERS = ['sft', 'rm', 'ppo'] as const;
export type TrainerName = (typeof TRAINERS)[number];

const ROWS = 4;
const SEQ = 256;
const config = { ...gpt2Defaults, residPdrop: 0, embdPdrop: 0 };
const lora: LoraConfig = { r: 16, alpha: 32, dropout: 0, targets: null }; // GPT-2's c_attn

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  return n;
}

// One optimizer step the way the epoch loop takes it: loss, backward, clip, AdamW over what trains.
function epochLoopStep(model: Module, loss: () => Tensor): number {
  const opt = new AdamW(model.trainableParameters(), { lr: 1e-5 });
  const t0 = performance.now();
  tidy(() => backward(loss()));
  clipGradNorm(model.trainableParameters(), 1);
  opt.step();
  model.zeroGrad();
  return (performance.now() - t0) / 1000;
}

function randomRows(n: number, rng: Rng): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: SEQ }, () => 1 + rng.int(config.vocabSize - 1)));
}

function run(trainer: TrainerName, withLora: boolean): Record<string, number | string | boolean> {
  const rng = new Rng(5);
  if (trainer === 'sft') {
    const model = new GPT2(config, new Rng(0)).train();
    if (withLora) applyLora(model, lora);
    const examples = randomRows(ROWS, rng).map((ids) => ({ ids, promptLength: SEQ / 2, file: 'bench', line: 0 }));
    const s = epochLoopStep(model, () => sftLoss(model, examples, 0));
    return { tok_s: Math.round((ROWS * SEQ) / s) };
  }
  if (trainer === 'rm') {
    const rm = new ScalarModel(new GPT2(config, new Rng(0)), new Rng(1)).train();
    if (withLora) applyLora(rm, lora);
    const rows = randomRows(ROWS, rng);
    const pairs = [0, 2].map((i) => ({ sequences: [rows[i], rows[i + 1]], ranking: [0, 1], file: 'bench', line: 0 }));
    const s = epochLoopStep(rm, () => rmBatchLoss(rm, pairs, 0, 0).loss);
    return { tok_s: Math.round((ROWS * SEQ) / s) };
  }
  // PPO: prompts of 128 tokens, 128 sampled; policy, value and reward model, and (full) a reference copy.
  const tokenizer = trainBpe(['the river runs past the mill'], { vocabSize: 280, minFrequency: 1 });
  const prompt = Array.from({ length: SEQ / 2 }, (_, i) => (i % 2 ? 'river' : 'mill')).join(' ');
  const out = mkdtempSync(join(tmpdir(), 'ik-bench-ppo-'));
  const make = (seed: number) => new GPT2(config, new Rng(seed));
  // As `instructkit ppo` does with the value model started from the reward model: a copy of it, or with LoRA its
  // trunk shared.
  const rm = new ScalarModel(make(2));
  const { value, reward } = withLora
    ? valueOnRewardModel(rm, 0, lora, 1)
    : { value: new ScalarModel(make(2)), reward: rewardModelFn(rm, 0) };
  const trainer_ = new PPOTrainer({
    policy: make(1),
    ref: withLora ? undefined : make(1),
    value,
    reward,
    formatter: new Formatter(tokenizer, 'bench tokenizer'),
    prompts: inlinePrompts([prompt]),
    config: {
      ...ppoDefaults,
      batchSize: ROWS,
      miniBatchSize: ROWS,
      ppoEpochs: 1,
      maxNewTokens: SEQ - tokenizer.encode(prompt).length,
      sampleEvery: 0,
      ...(withLora ? { loraR: lora.r, loraAlpha: lora.alpha, loraDropout: 0 } : {}),
    },
    outDir: out,
    quiet: true,
  });
  const t0 = performance.now();
  trainer_.train({ stopAfter: 1 });
  const s = (performance.now() - t0) / 1000;
  const ckpt = dirBytes(join(out, 'checkpoints'));
  rmSync(out, { recursive: true, force: true });
  return { tok_s: Math.round((ROWS * SEQ) / s), checkpoint_mb: Math.round(ckpt / 1e6) };
}

if (process.argv[1]?.endsWith('trainers.js') && process.argv[2]) {
  const trainer = process.argv[2] as TrainerName;
  if (!TRAINERS.includes(trainer)) throw new Error(`trainer must be one of ${TRAINERS.join(', ')}, got ${trainer}`);
  const withLora = process.argv[3] === 'lora';
  const result = run(trainer, withLora);
  const peak = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ trainer, lora: withLora, ...result, peak_rss_mb: Math.round(peak) }));
}
