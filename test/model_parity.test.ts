// The engine and models against PyTorch (fixtures written by test/fixtures/make_*_fixture.py with python3-torch):
// tiny GPT-2, Llama and Qwen2 checkpoints give the same logits, loss and parameter gradients, and GPT-2 follows
// the same 200-step AdamW loss curve.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CausalLM, loadPretrained } from '../src/models/hf.js';
import { readSafetensors } from '../src/models/safetensors.js';
import { AdamW } from '../src/nn/index.js';
import { backward, crossEntropy, reshape, Tensor, tidy } from '../src/tensor/index.js';

const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures');

function load(name: string): { model: CausalLM; ref: Map<string, Tensor>; dir: string } {
  const dir = join(fixtures, name);
  return { model: loadPretrained(dir), ref: readSafetensors(join(dir, 'reference.safetensors')), dir };
}

function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    err = Math.max(err, Math.abs(got[i] - want[i]));
  }
  return err / scale;
}

for (const name of ['gpt2-tiny', 'llama-tiny', 'qwen2-tiny'])
  test(`${name}: logits, loss and every gradient match PyTorch within 1e-4`, () => {
    const { model, ref } = load(name);
    model.eval();
    tidy(() => {
      const ids = ref.get('input_ids')!;
      const targets = ref.get('targets')!;
      const logits = model.forward(ids);
      assert.ok(maxRelErr(logits.f32, ref.get('logits')!.f32) < 1e-4, 'logits');
      const V = logits.size(-1);
      const loss = crossEntropy(reshape(logits, [-1, V]), reshape(targets, [-1]));
      assert.ok(Math.abs(loss.item() - ref.get('loss')!.item()) < 1e-4 * ref.get('loss')!.item(), 'loss');
      backward(loss);
    });
    const names = model.namedParameters();
    assert.equal(names.length, [...ref.keys()].filter((k) => k.startsWith('grad.')).length);
    for (const [name, p] of names) {
      const want = ref.get(`grad.${name}`);
      assert.ok(want, `reference has no gradient for ${name}`);
      const err = maxRelErr(p.grad!.f32, want.f32);
      assert.ok(err < 1e-4, `${name}: relative error ${err}`);
    }
  });

test('200 AdamW steps from the same init follow PyTorch’s loss curve within 2 %', () => {
  const { model, ref, dir } = load('gpt2-tiny');
  const train = JSON.parse(readFileSync(join(dir, 'train.json'), 'utf8'));
  const data = ref.get('train.data')!.i32;
  const want = ref.get('train.losses')!.f32;
  const opt = new AdamW(model.parameters(), {
    lr: train.lr,
    betas: train.betas,
    eps: train.eps,
    weightDecay: train.weight_decay,
  });
  const B = train.batch;
  const T = train.seq;
  const span = data.length - T - 1;
  const x = Tensor.empty([B, T], 'i32');
  const y = Tensor.empty([B, T], 'i32');
  for (let step = 0; step < train.steps; step++) {
    for (let j = 0; j < B; j++) {
      const start = ((step * B + j) * train.window_stride) % span;
      x.i32.set(data.subarray(start, start + T), j * T);
      y.i32.set(data.subarray(start + 1, start + 1 + T), j * T);
    }
    const loss = tidy(() => {
      const logits = model.forward(x);
      const l = crossEntropy(reshape(logits, [-1, logits.size(-1)]), reshape(y, [-1]));
      opt.zeroGrad();
      backward(l);
      opt.step();
      return l.item();
    });
    const rel = Math.abs(loss - want[step]) / want[step];
    assert.ok(rel < 0.02, `step ${step}: loss ${loss} vs PyTorch ${want[step]} (${(rel * 100).toFixed(2)} %)`);
  }
});
