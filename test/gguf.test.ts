// GGUF export checked by llama.cpp itself (node-llama-cpp's prebuilt binary): it loads the file, tokenizes as we do,
// and continues prompts greedily with the same tokens as our own sampler, in f32 and bf16.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  type CausalLM,
  exportGguf,
  GPT2,
  generate,
  gpt2Defaults,
  Llama,
  loadPretrained,
  savePretrained,
} from '../src/models/index.js';
import { native, Rng } from '../src/tensor/index.js';
import { Tokenizer, trainBpe } from '../src/tokenizer/index.js';

type NodeLlama = typeof import('node-llama-cpp');
type LlamaRuntime = Awaited<ReturnType<NodeLlama['getLlama']>>;

const root = mkdtempSync(join(tmpdir(), 'ik-gguf-'));
const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
let llama: LlamaRuntime | null = null;
let skipReason = '';

before(async () => {
  try {
    const { getLlama } = await import('node-llama-cpp');
    // The prebuilt CPU binary from the npm registry only: never a download or a build.
    llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, logLevel: 'error' as never });
  } catch (e) {
    skipReason = `node-llama-cpp's prebuilt llama.cpp cannot load on this machine: ${(e as Error).message}`;
  }
});
after(async () => {
  await llama?.dispose();
  rmSync(root, { recursive: true, force: true });
});

const corpus = Array.from(
  { length: 60 },
  (_, i) => `the ${['red', 'green', 'blue', 'gold'][i % 4]} fox ${i % 7} jumps over ${i % 5} lazy dogs.`,
);
const tokenizer = trainBpe(corpus, { vocabSize: 320, chatTokens: true });

// Random weights scaled up (std 0.02 × 5) so that the logits of a continuation are far apart: f32 and bf16 rounding
// in two engines then cannot turn a near-tie into a different token.
function widen(model: CausalLM): CausalLM {
  for (const p of model.parameters()) if (p.ndim === 2) native.scaleInPlace(p.f32, 5);
  return model;
}

function modelDir(name: string, model: CausalLM): string {
  const dir = join(root, name);
  savePretrained(widen(model), dir);
  tokenizer.save(dir);
  return dir;
}

const models: Record<string, () => string> = {
  gpt2: () =>
    modelDir(
      'gpt2',
      new GPT2(
        { ...gpt2Defaults, vocabSize: tokenizer.vocabSize, nPositions: 64, nEmbd: 64, nLayer: 2, nHead: 4 },
        new Rng(3),
      ),
    ),
  llama: () =>
    modelDir(
      'llama',
      new Llama(
        {
          vocabSize: tokenizer.vocabSize + 4, // padded, as published vocabularies often are
          hiddenSize: 64,
          intermediateSize: 96,
          numLayers: 2,
          numHeads: 4,
          numKvHeads: 2,
          headDim: 16,
          rmsNormEps: 1e-5,
          ropeTheta: 10000,
          // Llama 3's frequency scaling (a rope_freqs tensor in GGUF), over a band these positions reach
          ropeScaling: { type: 'llama3', factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 32 },
          maxPositions: 64,
          tieWordEmbeddings: false,
          qkvBias: false,
          oBias: false,
        },
        new Rng(4),
      ),
    ),
  qwen2: () =>
    modelDir(
      'qwen2',
      new Llama(
        {
          vocabSize: tokenizer.vocabSize,
          hiddenSize: 64,
          intermediateSize: 96,
          numLayers: 2,
          numHeads: 4,
          numKvHeads: 1,
          headDim: 16,
          rmsNormEps: 1e-6,
          ropeTheta: 1000000,
          maxPositions: 64,
          tieWordEmbeddings: true,
          qkvBias: true, // with no output bias: Qwen2
          oBias: false,
        },
        new Rng(5),
      ),
    ),
};

const prompts = ['the red fox', 'over 3 lazy', 'gold dogs jumps the'];

for (const [arch, make] of Object.entries(models))
  for (const dtype of ['f32', 'bf16'] as const)
    test(`${arch} ${dtype}: llama.cpp loads our GGUF, tokenizes as we do and continues greedily as we do`, async (t) => {
      if (!llama) return t.skip(skipReason);
      const dir = make();
      const file = join(root, `${arch}-${dtype}.gguf`);
      const ours = loadPretrained(dir, { dtype });
      exportGguf(ours, Tokenizer.fromDir(dir), file, { dtype });
      const lm = await llama.loadModel({ modelPath: file });
      try {
        const meta = lm.fileInfo.metadata as unknown as Record<string, Record<string, unknown>>;
        assert.equal(meta.general.architecture, arch);
        assert.equal((meta.tokenizer as Record<string, unknown>).chat_template, tokenizer.chatTemplate!.source);
        for (const p of prompts) {
          const ids = tokenizer.encode(p);
          assert.deepEqual([...lm.tokenize(p)], ids, `tokens of ${JSON.stringify(p)}`);
          const ctx = await lm.createContext({ contextSize: 64, threads: 1 });
          const theirs: number[] = [];
          for await (const token of ctx.getSequence().evaluate(lm.tokenize(p), { temperature: 0 })) {
            theirs.push(token);
            if (theirs.length === 12) break;
          }
          await ctx.dispose();
          const mine = generate(ours, [ids], { maxNewTokens: 12, temperature: 0 }).tokens[0];
          assert.deepEqual(theirs, mine, `greedy continuation of ${JSON.stringify(p)}`);
          assert.ok(new Set(mine).size > 2, 'a varied continuation, not one token repeated');
        }
      } finally {
        await lm.dispose();
      }
    });

test('q8_0: llama.cpp loads the quantized file and continues a prompt', async (t) => {
  if (!llama) return t.skip(skipReason);
  const dir = join(root, 'gpt2');
  if (!existsSync(dir)) models.gpt2();
  const file = join(root, 'gpt2-q8.gguf');
  exportGguf(loadPretrained(dir), Tokenizer.fromDir(dir), file, { dtype: 'q8_0' });
  const lm = await llama.loadModel({ modelPath: file });
  const ctx = await lm.createContext({ contextSize: 64, threads: 1 });
  const out: number[] = [];
  for await (const token of ctx.getSequence().evaluate(lm.tokenize('the red fox'), { temperature: 0 })) {
    out.push(token);
    if (out.length === 4) break;
  }
  assert.equal(out.length, 4);
  await ctx.dispose();
  await lm.dispose();
});

test('bad exports fail before anything is written, and leave no file behind', () => {
  const dir = join(root, 'gelu');
  const exact = new GPT2(
    {
      ...gpt2Defaults,
      activation: 'gelu',
      vocabSize: tokenizer.vocabSize,
      nPositions: 16,
      nEmbd: 16,
      nLayer: 1,
      nHead: 2,
    },
    new Rng(1),
  );
  savePretrained(exact, dir);
  tokenizer.save(dir);
  const run = (args: string[]) => spawnSync(process.execPath, [cli, 'export', ...args], { encoding: 'utf8' });
  // an architecture GGUF cannot express
  let r = run(['--format', 'gguf', dir, join(root, 'x.gguf')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /exact GELU.*cannot express/);
  assert.throws(() => exportGguf(exact, tokenizer, join(root, 'x.gguf')), /activation_function/);
  // an unknown dtype
  r = run(['--format', 'gguf', '--dtype', 'q4_k', dir, join(root, 'x.gguf')]);
  assert.match(r.stderr, /--dtype: expected one of f32, bf16, q8_0/);
  // a model folder without a tokenizer
  const bare = join(root, 'bare');
  savePretrained(exact, bare);
  r = run(['--format', 'gguf', bare, join(root, 'x.gguf')]);
  assert.match(r.stderr, /tokenizer\.json.*not found/);
  assert.ok(!readdirSync(root).some((f) => f.startsWith('x.gguf')), 'no output and no temporary file');
  // an existing file is left as it was
  writeFileSync(join(root, 'keep.gguf'), 'old');
  r = run(['--format', 'gguf', dir, join(root, 'keep.gguf')]);
  assert.equal(r.status, 1);
  assert.deepEqual(
    readdirSync(root).filter((f) => f.startsWith('keep.gguf')),
    ['keep.gguf'],
  );
});

test('export --format safetensors --dtype bf16 writes a folder that loads back as bf16', () => {
  const dir = join(root, 'gpt2');
  if (!existsSync(dir)) models.gpt2();
  const out = join(root, 'gpt2-bf16');
  const r = spawnSync(process.execPath, [cli, 'export', '--format', 'safetensors', '--dtype', 'bf16', dir, out], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const back = loadPretrained(out, { dtype: 'auto' });
  assert.equal(back.parameters().find((p) => p.ndim === 2)!.dtype, 'bf16');
  assert.ok(existsSync(join(out, 'tokenizer.json')));
});
