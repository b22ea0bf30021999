// The benchmark models of ../shared/DESIGN.md, the same shapes as ../shared/bench/torch_gpt.py.
import type { GPT2Config } from '../src/models/gpt2.js';

const common = {
  layerNormEpsilon: 1e-5,
  activation: 'gelu' as const,
  residPdrop: 0,
  embdPdrop: 0,
  tieWordEmbeddings: false,
};

export const BENCH_MODELS: Record<'ref' | 'gpt2-124m', { config: GPT2Config; batch: number }> = {
  // vocab 4096, context 256, batch 8, 4 layers, 4 heads, d 256, MLP 4x, untied head
  ref: { config: { ...common, vocabSize: 4096, nPositions: 256, nEmbd: 256, nLayer: 4, nHead: 4 }, batch: 8 },
  // GPT-2 small shapes at context 256, batch 4
  'gpt2-124m': {
    config: { ...common, vocabSize: 50257, nPositions: 256, nEmbd: 768, nLayer: 12, nHead: 12 },
    batch: 4,
  },
};
