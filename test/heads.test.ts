import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadScalarFolder } from '../src/models/folders.js';
import { ScalarModel } from '../src/models/heads.js';
import { loadPretrained, loadScalarPretrained, savePretrained, saveScalarPretrained } from '../src/models/hf.js';
import { applyLora, saveAdapter } from '../src/models/lora.js';
import { readHeader, readSafetensors, writeSafetensors } from '../src/models/safetensors.js';
import { responseLogps } from '../src/models/score.js';
import { add, backward, logSoftmax, mul, noGrad, Rng, randn, sum, Tensor, tidy } from '../src/tensor/index.js';
import { relativeError } from './helpers/gradcheck.js';

const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures');

for (const name of ['gpt2-tiny', 'llama-tiny']) {
  test(`${name}: the scalar head reads the last real token and takes the trunk's names`, () => {
    const trunk = loadPretrained(join(fixtures, name));
    const rm = new ScalarModel(trunk);
    rm.score.weight.f32.set(randn(rm.score.weight.shape, new Rng(3)).f32);
    const names = rm.namedParameters().map(([n]) => n);
    assert.ok(names.includes('score.weight') && names.includes('score.bias'));
    assert.ok(!names.some((n) => n.startsWith('lm_head')));
    assert.ok(
      names.some((n) => n.includes('.0.')),
      'trunk names are unprefixed',
    );
    tidy(() => {
      const ids = Tensor.fromBuffer(new Int32Array([5, 6, 7, 8, 9, 1, 2, 3, 0, 0]), [2, 5]);
      const perToken = rm.scoresPerToken(ids).toArray();
      const last = rm.scoreAt(ids, [4, 2]);
      assert.ok(Math.abs(last.toArray()[0] - perToken[4]) < 1e-5);
      assert.ok(Math.abs(last.toArray()[1] - perToken[7]) < 1e-5);
      backward(sum(last));
      assert.ok(rm.score.weight.grad && rm.score.bias!.grad);
      assert.throws(() => rm.scoreAt(ids, [5, 0]), /ScalarModel: index 5 outside \[0, 5\)/);
    });
  });
}

test('models and scalar models round-trip through Hugging Face folders', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-hf-'));
  for (const name of ['gpt2-tiny', 'qwen2-tiny']) {
    const model = loadPretrained(join(fixtures, name));
    savePretrained(model, join(dir, name));
    const again = loadPretrained(join(dir, name));
    const rm = new ScalarModel(model, new Rng(1));
    rm.score.weight.f32.set(randn(rm.score.weight.shape, new Rng(2)).f32);
    saveScalarPretrained(rm, join(dir, `${name}-rm`));
    const rm2 = loadScalarPretrained(join(dir, `${name}-rm`));
    tidy(() => {
      const ids = Tensor.fromBuffer(new Int32Array([1, 2, 3, 4]), [1, 4]);
      assert.deepEqual(again.forward(ids).toArray(), model.forward(ids).toArray());
      assert.deepEqual(rm2.scoreAt(ids, [3]).toArray(), rm.scoreAt(ids, [3]).toArray());
    });
    const cfg = JSON.parse(readFileSync(join(dir, `${name}-rm`, 'config.json'), 'utf8'));
    assert.equal(cfg.num_labels, 1);
    assert.match(cfg.architectures[0], /ForSequenceClassification$/);
  }
  rmSync(dir, { recursive: true });
});

test("a GPT-2 scalar model is saved under transformers' own names (transformer.h.0…, score.weight); both layouts load", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-hf-prefix-'));
  const rm = new ScalarModel(loadPretrained(join(fixtures, 'gpt2-tiny')), new Rng(1));
  rm.score.weight.f32.set(randn(rm.score.weight.shape, new Rng(2)).f32);
  const prefixed = join(dir, 'rm');
  saveScalarPretrained(rm, prefixed);
  const names = [...readHeader(join(prefixed, 'model.safetensors')).entries.keys()];
  assert.ok(names.includes('transformer.h.0.attn.c_attn.weight') && names.includes('transformer.wte.weight'));
  assert.ok(names.includes('score.weight') && !names.includes('transformer.score.weight'));
  assert.ok(!names.some((n) => n.startsWith('h.')));
  // The layout saved before the fix (no prefix) still loads, with the same scores.
  const bare = join(dir, 'bare');
  cpSync(prefixed, bare, { recursive: true });
  const sd = readSafetensors(join(bare, 'model.safetensors'));
  writeSafetensors(
    join(bare, 'model.safetensors'),
    new Map([...sd].map(([n, t]) => [n.replace(/^transformer\./, ''), t])),
  );
  tidy(() => {
    const ids = Tensor.fromBuffer(new Int32Array([1, 2, 3, 4]), [1, 4]);
    const want = rm.scoreAt(ids, [3]).toArray();
    assert.deepEqual(loadScalarPretrained(prefixed).scoreAt(ids, [3]).toArray(), want);
    assert.deepEqual(loadScalarPretrained(bare).scoreAt(ids, [3]).toArray(), want);
  });
  rmSync(dir, { recursive: true });
});

for (const name of ['gpt2-tiny', 'llama-tiny']) {
  test(`${name}: a likelihood term adds w × the response's mean log-likelihood; it trains, saves and loads (LoRA too)`, () => {
    const trunk = loadPretrained(join(fixtures, name));
    const rm = new ScalarModel(trunk, new Rng(1), { likelihood: 0.5 });
    rm.score.weight.f32.set(randn(rm.score.weight.shape, new Rng(3)).f32);
    const names = rm.namedParameters().map(([n]) => n);
    assert.ok(names.includes('likelihood.weight'));
    assert.equal(names.includes('lm_head.weight'), trunk.lm_head !== null, 'an untied LM head belongs to the model');
    // Row 0: prompt [5, 6], response [7, 8, 9]; row 1: prompt [1], response [2, 3], then padding.
    const ids = Tensor.fromBuffer(new Int32Array([5, 6, 7, 8, 9, 1, 2, 3, 0, 0]), [2, 5]);
    const rows = [
      { start: 2, last: 4 },
      { start: 1, last: 2 },
    ];
    const opts = { responseStart: rows.map((r) => r.start) };
    const lastIndex = rows.map((r) => r.last);
    tidy(() => {
      const plain = rm.scoresPerToken(ids).toArray();
      const logp = logSoftmax(trunk.forward(ids)).toArray();
      const V = trunk.config.vocabSize;
      const got = rm.scoreAt(ids, lastIndex, opts).toArray();
      rows.forEach(({ start, last }, b) => {
        let mean = 0;
        for (let t = start; t <= last; t++) mean += logp[(b * 5 + t - 1) * V + ids.i32[b * 5 + t]] / (last - start + 1);
        const want = plain[b * 5 + last] + 0.5 * mean;
        assert.ok(Math.abs(got[b] - want) < 1e-4, `row ${b}: ${got[b]} vs ${want}`);
      });
      backward(sum(rm.scoreAt(ids, lastIndex, opts)));
      assert.ok(rm.likelihood!.weight.grad, 'the weight trains');
      const head = trunk.lm_head?.weight ?? (trunk as { wte: { weight: Tensor } }).wte.weight;
      assert.ok(head.grad, 'so does the LM head');
    });
    // The trunk's gradients are those through the whole sequence's logits, which the head's gather stands in for.
    const plain = new ScalarModel(trunk, new Rng(1));
    plain.score.weight.f32.set(rm.score.weight.f32);
    const targets = Tensor.empty([2, 5], 'i32');
    targets.i32.fill(-100);
    for (const [b, { start, last }] of rows.entries())
      for (let t = start; t <= last; t++) targets.i32[b * 5 + t - 1] = ids.i32[b * 5 + t];
    const trunkGrads = (score: () => Tensor) => {
      rm.zeroGrad();
      tidy(() => backward(sum(score())));
      return trunk.parameters().map((p) => Array.from(p.grad!.f32));
    };
    const viaGather = trunkGrads(() => rm.scoreAt(ids, lastIndex, opts));
    const viaAllLogits = trunkGrads(() =>
      add(plain.scoreAt(ids, lastIndex), mul(responseLogps(trunk.forward(ids), targets, [3, 2]), 0.5)),
    );
    for (const [i, g] of viaGather.entries()) assert.ok(relativeError(g, viaAllLogits[i]) < 1e-4, `parameter ${i}`);
    assert.throws(() => rm.scoreAt(ids, lastIndex), /likelihood term: give responseStart/);
    assert.throws(() => rm.scoreAt(ids, [4, 0], { responseStart: [2, 1] }), /row 1: the response must/);
    assert.throws(() => rm.scoreAt(ids, [4, 2], { responseStart: [5, 1] }), /row 0: the response must/);
    rm.zeroGrad();
    const want = noGrad(() => tidy(() => rm.scoreAt(ids, lastIndex, opts).toArray()));
    const dir = mkdtempSync(join(tmpdir(), 'ik-rm-ll-'));
    saveScalarPretrained(rm, join(dir, 'full'));
    const again = loadScalarPretrained(join(dir, 'full'));
    assert.equal(again.likelihood?.weight.f32[0], 0.5);
    assert.deepEqual(
      noGrad(() => tidy(() => again.scoreAt(ids, lastIndex, opts).toArray())),
      want,
    );
    // LoRA: the weight is kept trainable and saved with the score head; the adapter loads back onto the SFT trunk.
    applyLora(rm, { r: 2, alpha: 4, dropout: 0, targets: [name === 'gpt2-tiny' ? 'c_attn' : 'q_proj'] }, { seed: 1 });
    assert.ok(rm.namedTrainableParameters().some(([n]) => n === 'likelihood.weight'));
    rm.likelihood!.weight.f32[0] = 0.75;
    const adapted = noGrad(() => tidy(() => rm.scoreAt(ids, lastIndex, opts).toArray()));
    cpSync(join(fixtures, name), join(dir, 'base'), { recursive: true });
    saveAdapter(rm, join(dir, 'adapter'), join(dir, 'base'));
    const merged = loadScalarFolder(join(dir, 'adapter'));
    assert.equal(merged.likelihood?.weight.f32[0], 0.75);
    const back = noGrad(() => tidy(() => merged.scoreAt(ids, lastIndex, opts).toArray()));
    for (const [i, v] of back.entries()) assert.ok(Math.abs(v - adapted[i]) < 1e-4, `${v} vs ${adapted[i]}`);
    rmSync(dir, { recursive: true });
  });
}
