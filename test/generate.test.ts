import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Generation, generate, sampleToken } from '../src/models/generate.js';
import { type CausalLM, loadPretrained } from '../src/models/hf.js';
import { native, noGrad, Rng, Tensor, tidy } from '../src/tensor/index.js';

const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
const models: [string, CausalLM][] = ['gpt2-tiny', 'llama-tiny'].map((n) => [n, loadPretrained(join(fixtures, n))]);

// Greedy continuation computed the slow way: a full forward pass over the whole sequence for every new token.
function greedyByFullForward(model: CausalLM, prompt: number[], n: number): { tokens: number[]; logprobs: number[] } {
  const seq = [...prompt];
  const logprobs: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = noGrad(() =>
      tidy(() => {
        const ids = Tensor.empty([1, seq.length], 'i32');
        ids.i32.set(seq);
        const logits = model.forward(ids);
        const V = logits.size(-1);
        return Array.from(logits.f32.subarray((seq.length - 1) * V, seq.length * V));
      }),
    );
    let best = 0;
    for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
    const max = row[best];
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    logprobs.push(row[best] - lse);
    seq.push(best);
  }
  return { tokens: seq.slice(prompt.length), logprobs };
}

for (const [name, model] of models) {
  test(`${name}: cached greedy decoding equals full forward passes, with left padding`, () => {
    model.eval();
    const prompts = [[5, 9, 2, 11, 3], [7], [1, 2, 3]];
    const got = generate(model, prompts, { maxNewTokens: 6, temperature: 0 });
    prompts.forEach((p, b) => {
      const want = greedyByFullForward(model, p, 6);
      assert.deepEqual(got.tokens[b], want.tokens, `row ${b}`);
      got.logprobs[b].forEach((lp, i) => {
        assert.ok(Math.abs(lp - want.logprobs[i]) < 1e-4, `row ${b} token ${i}`);
      });
      assert.equal(got.finishReasons[b], 'length');
    });
  });
}

test('sampling is seeded, top-k 1 is greedy, EOS ends a row', () => {
  const model = models[0][1];
  const prompts = [
    [3, 4, 5],
    [6, 7],
  ];
  const run = (seed: number): Generation => generate(model, prompts, { maxNewTokens: 8, temperature: 1, seed });
  assert.deepEqual(run(1).tokens, run(1).tokens);
  assert.notDeepEqual(run(1).tokens, run(2).tokens);
  const greedy = generate(model, prompts, { maxNewTokens: 5, temperature: 0 });
  const top1 = generate(model, prompts, { maxNewTokens: 5, temperature: 0.7, topK: 1, seed: 3 });
  assert.deepEqual(top1.tokens, greedy.tokens);
  const eos = greedy.tokens[0][1];
  const stopped = generate(model, prompts, { maxNewTokens: 5, temperature: 0, eosTokenIds: [eos] });
  assert.equal(stopped.finishReasons[0], 'eos');
  assert.deepEqual(stopped.tokens[0], greedy.tokens[0].slice(0, greedy.tokens[0].indexOf(eos) + 1));
});

test('stop strings end a row and are cut from its text', () => {
  const model = models[0][1];
  const decode = (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join('');
  const free = generate(model, [[1, 2]], { maxNewTokens: 6, temperature: 0, decode });
  const text = free.texts![0];
  const stop = text.slice(2, 4);
  const got = generate(model, [[1, 2]], { maxNewTokens: 6, temperature: 0, decode, stop: [stop] });
  assert.equal(got.finishReasons[0], 'stop');
  assert.equal(got.texts![0], text.slice(0, text.indexOf(stop)));
});

test('sampleToken follows the distribution and top-p keeps the nucleus', () => {
  const logits = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
  const rng = new Rng(5);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 20000; i++) counts[sampleToken(logits, { temperature: 1, topK: 0, topP: 1 }, rng).token]++;
  [0.5, 0.3, 0.15, 0.05].forEach((p, i) => {
    assert.ok(Math.abs(counts[i] / 20000 - p) < 0.015, `token ${i}`);
  });
  const nucleus = [0, 0, 0, 0];
  for (let i = 0; i < 5000; i++) nucleus[sampleToken(logits, { temperature: 1, topK: 0, topP: 0.8 }, rng).token]++;
  assert.equal(nucleus[2] + nucleus[3], 0);
  assert.ok(Math.abs(nucleus[0] / 5000 - 0.625) < 0.03);
  const { logprob } = sampleToken(logits, { temperature: 1, topK: 0, topP: 0.8 }, rng);
  assert.ok([Math.log(0.5), Math.log(0.3)].some((v) => Math.abs(v - logprob) < 1e-6));
});

test('the native row sampler follows the distribution and reports log-probs', () => {
  const p = [0.5, 0.3, 0.15, 0.05];
  const logits = new Float32Array(p.map(Math.log));
  const rng = new Rng(9);
  const counts = [0, 0, 0, 0];
  const token = new Int32Array(1);
  const logprob = new Float32Array(1);
  for (let i = 0; i < 20000; i++) {
    native.sampleRows(logits, new Float32Array([rng.next()]), 1, token, logprob);
    counts[token[0]]++;
    assert.ok(Math.abs(logprob[0] - Math.log(p[token[0]])) < 1e-5);
  }
  p.forEach((q, i) => {
    assert.ok(Math.abs(counts[i] / 20000 - q) < 0.015, `token ${i}`);
  });
  native.sampleRows(logits, new Float32Array([0.99]), 0, token, logprob);
  assert.equal(token[0], 0, 'temperature 0 is greedy');
});
