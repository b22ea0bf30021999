// A tiny PPO setup for tests: a byte-level BPE tokenizer trained on a few lines, a random 2-layer GPT-2 as the
// "SFT" policy, an identical frozen copy as the reference, and a value model on a third copy.
import { GPT2, gpt2Defaults, ScalarModel } from '../../src/models/index.js';
import { inlinePrompts } from '../../src/rlhf/data.js';
import { type PPOConfig, type PPOSetup, ppoDefaults } from '../../src/rlhf/ppo.js';
import type { RewardFn } from '../../src/rlhf/reward_fn.js';
import { Rng } from '../../src/tensor/index.js';
import { Formatter, trainBpe } from '../../src/tokenizer/index.js';

export const corpus = [
  'the cat sat on the mat and the dog sat on the log',
  'a banana and an apple are on a table',
  'we saw a bird, a bee and a bat at dawn',
  'bright stars over the quiet hills tonight',
];

export function tinyTokenizer() {
  return trainBpe(corpus, { vocabSize: 300, minFrequency: 2 });
}

export function tinyGPT2(vocabSize: number, seed = 0): GPT2 {
  return new GPT2(
    {
      ...gpt2Defaults,
      vocabSize,
      nPositions: 48,
      nEmbd: 32,
      nLayer: 2,
      nHead: 2,
      residPdrop: 0,
      embdPdrop: 0,
    },
    new Rng(seed),
  );
}

export function tinySetup(outDir: string, reward: RewardFn, config: Partial<PPOConfig>, ptxText?: string): PPOSetup {
  const tokenizer = tinyTokenizer();
  const V = tokenizer.vocabSize;
  return {
    policy: tinyGPT2(V),
    ref: tinyGPT2(V),
    value: new ScalarModel(tinyGPT2(V)),
    reward,
    formatter: new Formatter(tokenizer, 'test tokenizer'),
    prompts: inlinePrompts(['the cat', 'a dog', 'we saw', 'stars over', 'on the mat', 'apple', 'bright', 'a bee']),
    ptxTokens: ptxText === undefined ? null : tokenizer.encode(ptxText, { addSpecialTokens: false }),
    config: {
      ...ppoDefaults,
      batchSize: 8,
      miniBatchSize: 4,
      ppoEpochs: 2,
      maxNewTokens: 8,
      lr: 3e-3,
      valueLr: 3e-3,
      sampleEvery: 0,
      saveEvery: 1000,
      ptxSeqLen: 16,
      ptxBatchSize: 2,
      ...config,
    },
    outDir,
    quiet: true,
  };
}
