// The benchmark models of ../shared/DESIGN.md, the same shapes as ../shared/bench/torch_gpt.py.
import { GPT2, type GPT2Config } from '../src/models/gpt2.js';
import { AdamW } from '../src/nn/index.js';
import { autocast, backward, crossEntropy, Rng, reshape, Tensor, tidy } from '../src/tensor/index.js';

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

export interface Phases {
  forward: number;
  backward: number;
  optimizer: number;
}

/**
 * One AdamW training step of a fresh GPT-2 on fixed random tokens, as the PyTorch reference does; when `phases`
 * is given, each phase's milliseconds are added to it.
 */
export function trainingStep(config: GPT2Config, batch: number, dtype: 'f32' | 'bf16', phases?: Phases): () => void {
  const model = new GPT2(config, new Rng(0));
  const opt = new AdamW(model.parameters(), { lr: 3e-4, weightDecay: 0.1 });
  const rng = new Rng(2);
  const T = config.nPositions;
  const x = Tensor.empty([batch, T], 'i32');
  const y = Tensor.empty([batch, T], 'i32');
  for (let i = 0; i < batch * T; i++) {
    x.i32[i] = rng.int(config.vocabSize);
    y.i32[i] = rng.int(config.vocabSize);
  }
  const clock = (phase: keyof Phases, t0: number) => {
    if (phases) phases[phase] += performance.now() - t0;
    return performance.now();
  };
  return () =>
    tidy(() =>
      autocast(dtype, () => {
        let t = performance.now();
        const logits = model.forward(x);
        const loss = crossEntropy(reshape(logits, [-1, config.vocabSize]), reshape(y, [-1]));
        t = clock('forward', t);
        opt.zeroGrad();
        backward(loss);
        t = clock('backward', t);
        opt.step();
        clock('optimizer', t);
      }),
    );
}
