import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generate } from '../src/models/generate.js';
import { type CausalLM, loadPretrained, savePretrained } from '../src/models/hf.js';
import { readHeader } from '../src/models/safetensors.js';
import { autocast, noGrad, Tensor, tidy } from '../src/tensor/index.js';
import { relativeError } from './helpers/gradcheck.js';

const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures');

function logits(model: CausalLM, ids: number[][]): Float32Array {
  return noGrad(() =>
    tidy(() => {
      const x = Tensor.empty([ids.length, ids[0].length], 'i32');
      x.i32.set(ids.flat());
      return model.forward(x).f32.slice();
    }),
  );
}

function matrixBytes(model: CausalLM): number {
  return model
    .parameters()
    .filter((p) => p.ndim === 2)
    .reduce((s, p) => s + p.buffer.byteLength, 0);
}

for (const name of ['gpt2-tiny', 'llama-tiny']) {
  test(`${name}: a bf16 model's logits stay within bf16 rounding of the f32 model's (prefill and decode)`, () => {
    const f32 = loadPretrained(join(fixtures, name));
    const bf16 = loadPretrained(join(fixtures, name)).toDtype('bf16');
    assert.equal(matrixBytes(bf16) * 2, matrixBytes(f32));
    assert.ok(
      bf16.parameters().every((p) => (p.ndim === 2 ? p.dtype === 'bf16' && !p.requiresGrad : p.dtype === 'f32')),
    );
    // The f32 model on the same bf16-rounded weights: decode steps (a few rows, f32 activations) match it to f32
    // rounding; a prefill of many rows rounds its activations to bf16 too (oneDNN's bf16 product).
    const rounded = loadPretrained(join(fixtures, name)).toDtype('bf16').toDtype('f32');
    const prompt = [5, 9, 2, 11, 3, 8, 1, 4, 7, 6, 10, 12];
    const ids = [prompt, [...prompt].reverse()];
    // Tolerances (relative error over all logits): 2e-2 against the f32 model (weights rounded to 8 mantissa bits),
    // 1e-2 against f32 math on the rounded weights for a prefill, 1e-5 for decode rows.
    assert.ok(relativeError(logits(bf16, ids), logits(f32, ids)) < 2e-2);
    assert.ok(relativeError(logits(bf16, ids), logits(rounded, ids)) < 1e-2);
    for (const row of [[3], [3, 7]]) assert.ok(relativeError(logits(bf16, [row]), logits(rounded, [row])) < 1e-5);
    // Cached greedy decoding against the f32 model on the rounded weights (log-probs within 1e-2: the prompt's keys
    // and values come from the bf16 prefill).
    const gen = generate(bf16, [prompt], { maxNewTokens: 5, temperature: 0 });
    const ref = generate(rounded, [prompt], { maxNewTokens: 5, temperature: 0 });
    assert.deepEqual(gen.tokens, ref.tokens);
    for (const [i, lp] of gen.logprobs[0].entries())
      assert.ok(Math.abs(lp - ref.logprobs[0][i]) < 1e-2, `step ${i}: ${lp} vs ${ref.logprobs[0][i]}`);
  });

  test(`${name}: saved as bf16 safetensors, loaded back as bf16 (auto) with the same logits`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ik-bf16-'));
    try {
      const bf16 = loadPretrained(join(fixtures, name), { dtype: 'bf16' });
      savePretrained(bf16, dir, { dtype: 'bf16' });
      const { entries } = readHeader(join(dir, 'model.safetensors'));
      assert.ok([...entries.values()].every((e) => e.dtype === 'BF16'));
      const back = loadPretrained(dir, { dtype: 'auto' });
      // The matrices come back bit for bit; the vectors (f32 in memory) were rounded to bf16 in the file.
      const own = new Map(bf16.namedParameters());
      for (const [key, p] of back.namedParameters())
        if (p.ndim === 2) assert.deepEqual(p.u16, own.get(key)!.u16, key);
        else assert.equal(p.dtype, 'f32');
      const ids = [[4, 8, 15, 16, 23, 42].map((i) => i % 50)];
      assert.ok(relativeError(logits(back, ids), logits(bf16, ids)) < 1e-2);
      // and the bf16 model saves as f32 too (torch loads either)
      savePretrained(bf16, dir);
      assert.ok([...readHeader(join(dir, 'model.safetensors')).entries.values()].every((e) => e.dtype === 'F32'));
      assert.deepEqual(logits(loadPretrained(dir), ids), logits(bf16.toDtype('f32'), ids));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('autocast decoding of an f32 model gives the f32 tokens (few rows read the f32 weights as they are)', () => {
  const model = loadPretrained(join(fixtures, 'gpt2-tiny'));
  const prompt = [5, 9, 2, 11];
  const f32 = generate(model, [prompt], { maxNewTokens: 6, temperature: 0 });
  const bf16 = autocast('bf16', () => generate(model, [prompt], { maxNewTokens: 6, temperature: 0 }));
  assert.deepEqual(bf16.tokens, f32.tokens);
});
