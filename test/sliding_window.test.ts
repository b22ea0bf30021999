import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadPretrained, savePretrained } from '../src/models/hf.js';
import { Llama } from '../src/models/llama.js';
import { readSafetensors } from '../src/models/safetensors.js';
import {
  add,
  attention,
  backward,
  crossEntropy,
  mul,
  noGrad,
  Rng,
  randn,
  reshape,
  slice,
  sum,
  Tensor,
  tidy,
} from '../src/tensor/index.js';

const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures');

function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    err = Math.max(err, Math.abs(got[i] - want[i]));
  }
  return err / scale;
}

for (const name of ['mistral-window-tiny', 'qwen2-window-tiny'])
  test(`${name}: sliding-window logits, loss and gradients match PyTorch on a sequence longer than the window`, () => {
    const dir = join(fixtures, name);
    const model = loadPretrained(dir);
    assert.ok(model instanceof Llama && model.config.slidingWindow! < 16);
    const ref = readSafetensors(join(dir, 'reference.safetensors'));
    const ids = ref.get('input_ids')!;
    const want = ref.get('logits')!.f32;
    // The fixture is meaningful: full attention gives other logits.
    assert.ok(maxRelErr(ref.get('full_attention_logits')!.f32, want) > 0.05);
    tidy(() => {
      const logits = model.forward(ids);
      assert.ok(maxRelErr(logits.f32, want) < 1e-4, `logits: ${maxRelErr(logits.f32, want)}`);
      const loss = crossEntropy(reshape(logits, [-1, logits.size(-1)]), reshape(ref.get('targets')!, [-1]));
      assert.ok(Math.abs(loss.item() - ref.get('loss')!.item()) < 1e-4 * ref.get('loss')!.item());
      backward(loss);
    });
    for (const [n, p] of model.namedParameters()) {
      const err = maxRelErr(p.grad!.f32, ref.get(`grad.${n}`)!.f32);
      assert.ok(err < 1e-4, `${n}: relative error ${err}`);
    }

    // KV-cache decoding sees the same window: a prefill of 3, one chunk of 9 (the blocked kernel), then single steps.
    const [B, T] = ids.shape;
    const V = model.config.vocabSize;
    const cache = model.newCache(B, T);
    const got = new Float32Array(B * T * V);
    for (const [from, to] of [[0, 3], [3, 12], ...Array.from({ length: T - 12 }, (_, k) => [12 + k, 13 + k])]) {
      const chunk = Tensor.empty([B, to - from], 'i32');
      for (let b = 0; b < B; b++) chunk.i32.set(ids.i32.subarray(b * T + from, b * T + to), b * (to - from));
      const logits = noGrad(() => tidy(() => model.forward(chunk, { cache }).toArray()));
      for (let b = 0; b < B; b++)
        got.set(logits.slice(b * (to - from) * V, (b + 1) * (to - from) * V), (b * T + from) * V);
    }
    assert.ok(maxRelErr(got, want) < 1e-4, `decode: ${maxRelErr(got, want)}`);

    // Saved and loaded again with its window (transformers' fields).
    const out = mkdtempSync(join(tmpdir(), 'ik-window-'));
    savePretrained(model, out);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    const theirs = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    for (const k of ['model_type', 'sliding_window', 'use_sliding_window', 'max_window_layers'])
      assert.deepEqual(cfg[k], theirs[k], k);
    const again = noGrad(() => tidy(() => loadPretrained(out).forward(ids).toArray()));
    assert.ok(maxRelErr(again, want) < 1e-4);
    rmSync(out, { recursive: true });
  });

for (const W of [7, 70])
  test(`attention with window ${W} equals attention with the out-of-window keys masked, forward and backward`, () => {
    // One query row per call against an explicit padding mask of the keys outside its window (the unwindowed kernel);
    // 150 keys span three key blocks, so whole blocks before a window are skipped.
    const rng = new Rng(4);
    const [B, T, H, hd] = [2, 150, 2, 8];
    const q = randn([B, T, H, hd], rng);
    const k = randn([B, T, H, hd], rng);
    const v = randn([B, T, H, hd], rng);
    const g = randn([B, T, H, hd], rng);
    for (const x of [q, k, v]) x.requiresGrad = true;
    const out = tidy(() => {
      const y = attention(q, k, v, { causal: true, window: W });
      backward(sum(mul(y, g)));
      return Float32Array.from(y.f32);
    });
    const grads = [q, k, v].map((x) => Float32Array.from(x.grad!.f32));
    for (const x of [q, k, v]) {
      x.grad!.dispose();
      x.grad = null;
    }
    for (let i = 0; i < T; i++)
      tidy(() => {
        const mask = Tensor.empty([B, i + 1]);
        for (let b = 0; b < B; b++) for (let j = 0; j <= i; j++) mask.f32[b * (i + 1) + j] = j > i - W ? 1 : 0;
        const y = attention(slice(q, 1, i, i + 1), slice(k, 1, 0, i + 1), slice(v, 1, 0, i + 1), {
          causal: true,
          keyMask: mask,
        });
        for (let b = 0; b < B; b++)
          for (let x = 0; x < H * hd; x++)
            assert.ok(Math.abs(y.f32[b * H * hd + x] - out[(b * T + i) * H * hd + x]) < 1e-5, `row ${i}`);
      });
    // Backward against the same composition over all rows.
    tidy(() => {
      let loss: Tensor | null = null;
      for (let i = 0; i < T; i++) {
        const mask = Tensor.empty([B, i + 1]);
        for (let b = 0; b < B; b++) for (let j = 0; j <= i; j++) mask.f32[b * (i + 1) + j] = j > i - W ? 1 : 0;
        const y = attention(slice(q, 1, i, i + 1), slice(k, 1, 0, i + 1), slice(v, 1, 0, i + 1), {
          causal: true,
          keyMask: mask,
        });
        const term = sum(mul(y, slice(g, 1, i, i + 1)));
        loss = loss ? add(loss, term) : term;
      }
      backward(loss!);
    });
    [q, k, v].forEach((x, n) => {
      assert.ok(maxRelErr(grads[n], x.grad!.f32) < 1e-4, `grad ${'qkv'[n]}`);
    });
    assert.throws(() => attention(q, k, v, { causal: false, window: 3 }), /a sliding window needs causal attention/);
    assert.throws(() => attention(q, k, v, { window: -1 }), /window must be an integer >= 0/);
  });
