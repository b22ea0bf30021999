// Writes checkpoints and a tokenizer the way instructkit saves them, with our logits, scores and token ids, for
// check_transformers.py to load with Hugging Face transformers and compare. Needs `npx tsc -p .` first.
// Usage: node scripts/interop/export-ours.mjs OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  loadPretrained,
  loadScalarPretrained,
  ScalarModel,
  savePretrained,
  saveScalarPretrained,
} from '../../dist/src/models/index.js';
import { noGrad, Rng, Tensor, tidy } from '../../dist/src/tensor/index.js';
import { trainBpe } from '../../dist/src/tokenizer/index.js';

const out = process.argv[2];
if (!out) throw new Error('usage: node scripts/interop/export-ours.mjs OUT_DIR');
const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
const ids = [3, 17, 42, 5, 9, 33, 1, 60];
const batch = () => Tensor.fromBuffer(new Int32Array(ids), [1, ids.length]);
const longIds = Array.from({ length: 48 }, (_, i) => (i * 37 + 11) % 96);
const expected = { ids, models: {}, scalars: {}, tokenizer: null };

// Causal LMs, each written in another of the layouts we support.
const lms = [
  ['gpt2', 'gpt2-tiny', {}],
  ['llama-sharded', 'llama-tiny', { maxShardBytes: 20_000 }],
  ['qwen2-bf16', 'qwen2-tiny', { dtype: 'bf16', maxShardBytes: 30_000 }],
  // A Llama 3 RoPE scaling, as transformers wrote it, saved back by us (48 positions make the scaling matter).
  ['llama3-resaved', 'hf-written/llama3-rope-scaling', {}],
];
for (const [name, fixture, opts] of lms) {
  savePretrained(loadPretrained(join(fixtures, fixture)), join(out, name), opts);
  const long = name === 'llama3-resaved';
  const input = long ? Tensor.fromBuffer(new Int32Array(longIds), [1, longIds.length]) : batch();
  const logits = noGrad(() => tidy(() => loadPretrained(join(out, name)).forward(input).toArray()));
  expected.models[name] = { ids: long ? longIds : ids, logits };
}

// Reward models: a trunk plus a random score head, read at the last token.
for (const [name, fixture] of [
  ['rm-gpt2', 'gpt2-tiny'],
  ['rm-llama', 'llama-tiny'],
]) {
  const rm = new ScalarModel(loadPretrained(join(fixtures, fixture)));
  const w = rm.score.weight.f32;
  const rng = new Rng(7);
  for (let i = 0; i < w.length; i++) w[i] = 0.3 * rng.normal();
  saveScalarPretrained(rm, join(out, name));
  const score = noGrad(() =>
    tidy(() =>
      loadScalarPretrained(join(out, name))
        .scoreAt(batch(), [ids.length - 1])
        .toArray(),
    ),
  );
  expected.scalars[name] = { score: score[0], bias: rm.score.bias ? rm.score.bias.f32[0] : 0 };
}

// A tokenizer we train, with the chat template we write.
const corpus = Array.from(
  { length: 200 },
  (_, i) => `Line ${i}: the river Ost runs past Velmar; ${i * 7} apples, ünïcödé 🙂.`,
);
const tok = trainBpe(corpus, { vocabSize: 400, chatTokens: true });
tok.save(join(out, 'tokenizer'));
const texts = ['Hello world!', '  runs  of   spaces\n\n\nand newlines', 'ünïcödé 🙂 emoji', 'Velmar 1234 apples'];
const messages = [
  { role: 'user', content: 'What river runs past Velmar?' },
  { role: 'assistant', content: 'The Ost.' },
];
expected.tokenizer = {
  texts,
  ids: texts.map((t) => tok.encode(t)),
  chat: tok.applyChatTemplate(messages, { addGenerationPrompt: false }),
  messages,
};
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'expected.json'), JSON.stringify(expected));
console.log(`wrote ${out}`);
