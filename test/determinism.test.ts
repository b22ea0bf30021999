// Same seed and thread count → bit-identical losses, dropout included.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GPT2 } from '../src/models/gpt2.js';
import { AdamW } from '../src/nn/index.js';
import { backward, crossEntropy, Rng, reshape, Tensor, tidy } from '../src/tensor/index.js';

function losses(seed: number, steps: number): number[] {
  const cfg = {
    vocabSize: 50,
    nPositions: 16,
    nEmbd: 32,
    nLayer: 2,
    nHead: 4,
    layerNormEpsilon: 1e-5,
    activation: 'gelu_new' as const,
    residPdrop: 0.1,
    embdPdrop: 0.1,
    tieWordEmbeddings: true,
  };
  const model = new GPT2(cfg, new Rng(seed));
  const opt = new AdamW(model.parameters(), { lr: 1e-2 });
  const data = new Rng(seed + 1);
  const x = Tensor.empty([4, 16], 'i32');
  const y = Tensor.empty([4, 16], 'i32');
  const out: number[] = [];
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < 64; i++) {
      x.i32[i] = data.int(50);
      y.i32[i] = (x.i32[i] * 7) % 50;
    }
    out.push(
      tidy(() => {
        const loss = crossEntropy(reshape(model.forward(x), [-1, 50]), reshape(y, [-1]));
        opt.zeroGrad();
        backward(loss);
        opt.step();
        return loss.item();
      }),
    );
  }
  return out;
}

test('two runs with the same seed give bit-identical losses', () => {
  const a = losses(3, 15);
  assert.deepEqual(losses(3, 15), a);
  assert.notDeepEqual(losses(4, 15), a);
  assert.ok(a[a.length - 1] < a[0], 'the model learns');
});
