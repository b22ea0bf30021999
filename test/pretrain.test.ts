import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { run as pretrainCli } from '../src/cli/commands/pretrain.js';
import { GPT2, Llama, loadPretrained } from '../src/models/index.js';
import { Rng } from '../src/tensor/index.js';
import { CHAT_TOKENS, Tokenizer, trainBpe } from '../src/tokenizer/index.js';
import { listCheckpoints } from '../src/train/checkpoint.js';
import { readMetrics } from '../src/train/metrics.js';
import { type PretrainConfig, pretrain, resolvePretrainConfig } from '../src/train/pretrain.js';
import {
  readDocuments,
  readTokenMeta,
  sidecarPath,
  TokenFile,
  TokenWriter,
  tokenizeCorpus,
  tokenizerHash,
} from '../src/train/tokens.js';
import { assertSameRun, killAfterFirstCheckpoint, spawnCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ik-pretrain-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const _cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

// A small corpus with structure a tiny model learns in a few dozen steps: short documents of simple sentences.
function writeCorpus(path: string, documents: number, seed = 1): string {
  const rng = new Rng(seed);
  const pick = (xs: string[]) => xs[rng.int(xs.length)];
  const subjects = ['the cat', 'a dog', 'the bird', 'my friend', 'the teacher', 'a child'];
  const verbs = ['sat on', 'looked at', 'ran to', 'jumped over', 'found', 'liked'];
  const objects = ['the mat', 'a tree', 'the house', 'the river', 'a box', 'the garden'];
  const docs: string[] = [];
  for (let d = 0; d < documents; d++) {
    const lines: string[] = [];
    for (let s = 0, n = 1 + rng.int(3); s < n; s++) lines.push(`${pick(subjects)} ${pick(verbs)} ${pick(objects)}.`);
    docs.push(lines.join('\n'));
  }
  writeFileSync(path, `${docs.join('\n\n')}\n`);
  return path;
}

const quiet = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) as NodeJS.WriteStream;

test('readDocuments: a .jsonl corpus is one {"text"} document per line; a bad line names file:line', () => {
  const f = join(dir, 'docs.jsonl');
  writeFileSync(
    f,
    `${JSON.stringify({ text: 'first\n\nstill first 🙂' })}\n\n${JSON.stringify({ text: 'second', id: 7 })}`,
  );
  const want = [
    { text: 'first\n\nstill first 🙂', endOfDocument: true },
    { text: 'second', endOfDocument: true },
  ];
  for (const chunkBytes of [1, 5, 1 << 20]) assert.deepEqual([...readDocuments([f], { chunkBytes })], want);
  writeFileSync(f, `${JSON.stringify({ text: 'ok' })}\n{"content": "no text field"}\n`);
  assert.throws(
    () => [...readDocuments([f])],
    /docs\.jsonl:2: a \.jsonl corpus needs \{"text": "\.\.\."\} on every line/,
  );
});

test('readDocuments: blank lines separate documents, files end them, chunks split anywhere', () => {
  const a = join(dir, 'docs-a.txt');
  const b = join(dir, 'docs-b.txt');
  writeFileSync(a, 'héllo wörld\r\nsecond line\r\n\r\n  \n\n世界 🙂 three\nlast');
  writeFileSync(b, '\n\nother file\n');
  const want = [
    { text: 'héllo wörld\nsecond line', endOfDocument: true },
    { text: '世界 🙂 three\nlast', endOfDocument: true },
    { text: 'other file', endOfDocument: true },
  ];
  for (const chunkBytes of [1, 3, 7, 1 << 20]) assert.deepEqual([...readDocuments([a, b], { chunkBytes })], want);
  // A long document comes in pieces cut at line ends; their texts concatenate to the document.
  const pieces = [...readDocuments([a], { maxPieceChars: 5 })];
  assert.deepEqual(
    pieces.map((p) => p.endOfDocument),
    [false, true, false, true],
  );
  assert.equal(pieces[0].text + pieces[1].text, want[0].text);
});

function roundTrip(vocab: number, n: number, wantDtype: string, wantBytes: number): void {
  const path = join(dir, `ids-${vocab}.bin`);
  const rng = new Rng(vocab);
  const ids = Array.from({ length: n }, (_, i) => (i < 3 ? vocab - 1 - i : rng.int(vocab)));
  const w = new TokenWriter(path, vocab);
  // Several writes, one of them larger than the writer's buffer.
  w.write(ids.slice(0, 10));
  w.write(Int32Array.from(ids.slice(10, 70000)));
  w.write(ids.slice(70000));
  assert.equal(w.count, n);
  const meta = w.finish({ tokenizer: 'none', documents: 1, corpus: [] });
  assert.equal(meta.dtype, wantDtype);
  assert.equal(statSync(path).size, n * wantBytes);
  assert.deepEqual(readTokenMeta(path), meta);
  const file = TokenFile.open(path);
  assert.equal(file.count, n);
  for (const [start, len] of [
    [0, 5],
    [n - 17, 17],
    [12345, 1000],
    [65535, 3],
    [n, 0],
  ])
    assert.deepEqual(Array.from(file.read(start, len)), ids.slice(start, start + len), `window at ${start}`);
  const into = new Int32Array(8).fill(-1);
  file.read(100, 4, into, 2);
  assert.deepEqual(Array.from(into), [-1, -1, ...ids.slice(100, 104), -1, -1]);
  assert.throws(() => file.read(n - 2, 3), /outside \[0, 80000\)/);
  file.close();
}

test('token files round-trip: uint16 up to 65535 ids, uint32 above, windows read at offsets', () => {
  roundTrip(65535, 80000, 'uint16', 2);
  roundTrip(70000, 80000, 'uint32', 4);
  const path = join(dir, 'bad.bin');
  const w = new TokenWriter(path, 10);
  assert.throws(() => w.write([3, 10]), /token id 10 is outside the vocabulary \[0, 10\)/);
  w.abort();
  assert.ok(!existsSync(path));
  // A sidecar that disagrees with the file is named in the error.
  const good = join(dir, 'ids-65535.bin');
  const meta = JSON.parse(readFileSync(sidecarPath(good), 'utf8'));
  writeFileSync(sidecarPath(good), JSON.stringify({ ...meta, count: 5 }));
  assert.throws(
    () => TokenFile.open(good),
    /ids-65535\.bin: holds 160000 bytes, but .*ids-65535\.bin\.json says "count" 5/,
  );
});

test('tokenizeCorpus writes each document then EOS, tied to the tokenizer by hash', () => {
  const corpus = join(dir, 'tok-corpus.txt');
  writeFileSync(corpus, 'the cat sat.\nthe dog ran.\n\n\nthe bird sang.\n');
  const tok = trainBpe(['the cat sat. the dog ran. the bird sang.'], { vocabSize: 300, chatTokens: true });
  const path = join(dir, 'tok.bin');
  const meta = tokenizeCorpus([corpus], tok, path);
  const eos = tok.eosId!;
  const enc = (s: string) => tok.encode(s, { addSpecialTokens: false });
  const want = [...enc('the cat sat.\nthe dog ran.'), eos, ...enc('the bird sang.'), eos];
  assert.equal(meta.documents, 2);
  assert.equal(meta.tokenizer, tokenizerHash(tok));
  const file = TokenFile.open(path);
  assert.deepEqual(Array.from(file.read(0, file.count)), want);
  file.close();

  const blank = join(dir, 'blank.txt');
  writeFileSync(blank, '\n   \n\n');
  assert.throws(() => tokenizeCorpus([blank], tok, join(dir, 'blank.bin')), /blank\.txt: the corpus holds no text/);
  writeFileSync(join(dir, 'empty.txt'), '');
  assert.throws(() => tokenizeCorpus([join(dir, 'empty.txt')], tok, path), /empty\.txt: corpus file is empty/);
  assert.throws(() => tokenizeCorpus([join(dir, 'nope.txt')], tok, path), /nope\.txt: corpus file not found/);
});

const baseConfig = (out: string, over: Partial<PretrainConfig> = {}): PretrainConfig =>
  resolvePretrainConfig([
    {
      values: {
        corpus: [writeCorpus(join(dir, 'corpus.txt'), 400)],
        out,
        vocabSize: 320,
        steps: 40,
        batchSize: 4,
        seq: 32,
        lr: 3e-3,
        evalEvery: 20,
        saveEvery: 20,
        ...over,
      },
      source: 'test',
    },
  ]);

test('a tiny GPT-2 pretraining run lowers the validation loss and ends as a loadable checkpoint', () => {
  const out = join(dir, 'run-gpt2');
  const result = pretrain(baseConfig(out), { stream: quiet });
  const metrics = readMetrics(join(out, 'metrics.jsonl'));
  const val = metrics.filter((m) => m['eval/loss'] !== undefined).map((m) => [m.step, m['eval/loss']]);
  assert.deepEqual(
    val.map(([s]) => s),
    [0, 20, 40],
  );
  assert.equal(val[0][1], result.initialValLoss);
  assert.equal(val[2][1], result.finalValLoss);
  // Uniform over 320 ids is ln 320 = 5.77; the sentences are far more predictable than that.
  assert.ok(result.initialValLoss! > 5, `initial val loss ${result.initialValLoss}`);
  assert.ok(
    result.finalValLoss < result.initialValLoss! - 1.5,
    `val loss ${result.initialValLoss} → ${result.finalValLoss}`,
  );
  assert.equal(metrics.filter((m) => m['train/loss'] !== undefined).length, 40);
  // Warmup from 0 over 2 steps (5 % of 40), the peak, then a cosine down towards minLrRatio × lr.
  const lrs = metrics.filter((m) => m.lr !== undefined).map((m) => Number(m.lr));
  assert.deepEqual(lrs.slice(0, 3), [0, 1.5e-3, 3e-3]);
  assert.ok(lrs[39] > 3e-4 && lrs[39] < 3.1e-4, `last lr ${lrs[39]}`);

  const model = loadPretrained(out);
  assert.ok(model instanceof GPT2);
  assert.equal(model.numParameters(), result.parameters);
  const tok = Tokenizer.fromDir(out);
  assert.equal(model.config.vocabSize, tok.vocabSize);
  // transformers' generate() stops on the config's eos id, so it must be our tokenizer's, not GPT-2's 50256.
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.eos_token_id, tok.eosId);
  assert.ok(tok.eosId !== null && tok.eosId < tok.vocabSize);
  assert.equal(model.maxPositions, 32);
  assert.notEqual(tok.tokenToId(CHAT_TOKENS.user), null);
  assert.match(tok.applyChatTemplate([{ role: 'user', content: 'hi' }]), /<\|user\|>\nhi<\|end\|>/);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'pretrain_config.json'), 'utf8')).steps, 40);
  assert.deepEqual(listCheckpoints(join(out, 'checkpoints')), ['step-00000020', 'step-00000040']);

  // The folder holds a run: starting again without --resume refuses, resuming with other settings refuses.
  assert.throws(
    () => pretrain(baseConfig(out), { stream: quiet }),
    /holds checkpoints of an earlier run; pass --resume/,
  );
  assert.throws(
    () => pretrain(baseConfig(out, { lr: 0.002 }), { resume: true, stream: quiet }),
    /--resume: the config differs from .*pretrain_config\.json \("lr" \(--lr\): 0\.003 → 0\.002\); .* --force-config/,
  );
});

test('a Llama run (bf16 autocast) with a given tokenizer folder saves a Llama checkpoint', () => {
  const out = join(dir, 'run-llama');
  const tokDir = join(dir, 'given-tokenizer');
  trainBpe(['the cat sat on the mat. a dog ran to the house.'], { vocabSize: 300 }).save(tokDir);
  const result = pretrain(baseConfig(out, { model: 'llama', tokenizer: tokDir, steps: 3, evalEvery: 3, bf16: true }), {
    stream: quiet,
  });
  const model = loadPretrained(out);
  assert.ok(model instanceof Llama);
  assert.equal(model.numParameters(), result.parameters);
  assert.equal(tokenizerHash(Tokenizer.fromDir(out)), tokenizerHash(Tokenizer.fromDir(tokDir)));
});

test('bad settings and corpora fail with the field or file named, before any compute', async () => {
  const corpus = join(dir, 'corpus.txt');
  const out = join(dir, 'run-bad');
  const reject = (args: string[], re: RegExp) => assert.rejects(pretrainCli(args), re);
  await reject(
    ['--corpus', corpus, '--out', out, '--size', 'huge'],
    /field "size" \(--size\) must be one of tiny, mini, small/,
  );
  await reject(
    ['--corpus', corpus, '--out', out, '--model', 'bert'],
    /field "model" \(--model\) must be one of gpt2, llama/,
  );
  await reject(['--corpus', corpus, '--out', out, '--steps', 'abc'], /--steps: expected an integer, got "abc"/);
  await reject(['--corpus', corpus, '--out', out, '--steps=-3'], /field "steps" \(--steps\) must be an integer >= 1/);
  await reject(['--corpus', corpus, '--out', out, '--lr', '1e-3x'], /--lr: expected a number/);
  await reject(['--corpus', corpus, '--out', out, '--batch-size', '2.5'], /--batch-size: expected an integer/);
  await reject(
    ['--corpus', corpus, '--out', out, '--seq', '1e9'],
    /field "seq" \(--seq\) must be an integer in \[2, 65536\]/,
  );
  await reject(['--out', out], /field "corpus" \(--corpus\) must be a non-empty list/);
  await reject(['--corpus', corpus], /field "out" \(--out\) must be a folder path/);
  await reject(['--corpus', join(dir, 'missing.txt'), '--out', out], /missing\.txt: corpus file not found/);
  const cfg = join(dir, 'cfg.yaml');
  writeFileSync(cfg, 'steps: 10\nlearningRate: 0.1\n');
  await reject(['--corpus', corpus, '--out', out, '--config', cfg], /cfg\.yaml: unknown field "learningRate"/);
  writeFileSync(cfg, 'steps: ten\n');
  await reject(
    ['--corpus', corpus, '--out', out, '--config', cfg],
    /cfg\.yaml: field "steps" \(--steps\) must be an integer >= 1, got "ten"/,
  );
  writeFileSync(cfg, 'warmupRatio: 2\n');
  await reject(
    ['--corpus', corpus, '--out', out, '--config', cfg],
    /field "warmupRatio" \(--warmup-ratio\) must be a number in \[0, 1\]/,
  );
  const blank = join(dir, 'blank2.txt');
  writeFileSync(blank, '\n\n \n');
  await reject(['--corpus', blank, '--out', out], /blank2\.txt: the corpus holds no text/);
  const small = join(dir, 'small.txt');
  writeFileSync(small, 'a tiny corpus.\n');
  await reject(['--corpus', small, '--out', out, '--vocab-size', '300'], /tokens are too few for seq 128/);
  assert.ok(!existsSync(join(out, 'model.safetensors')));
});

test('a run killed with SIGKILL and resumed repeats the uninterrupted run bit for bit', async () => {
  const corpus = writeCorpus(join(dir, 'kill-corpus.txt'), 300, 5);
  const cfg = join(dir, 'kill.json');
  writeFileSync(cfg, JSON.stringify({ saveEvery: 10, evalEvery: 20, evalBatches: 2, dropout: 0.1 }));
  const args = (out: string) => [
    ...['pretrain', '--corpus', corpus, '--out', out, '--config', cfg, '--vocab-size', '300', '--seed', '7'],
    ...['--steps', '80', '--batch-size', '2', '--seq', '16'],
  ];
  const killed = join(dir, 'run-killed');
  await killAfterFirstCheckpoint(args(killed), killed);
  assert.ok(!existsSync(join(killed, 'model.safetensors')));
  const resumed = await spawnCli([...args(killed), '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const from = Number(/resuming after step (\d+)/.exec(resumed.stderr)?.[1]);
  assert.ok(from >= 10 && from < 80, `resumed from ${from}`);

  const straight = join(dir, 'run-straight');
  const whole = await spawnCli(args(straight));
  assert.equal(whole.code, 0, whole.stderr);
  assert.equal(readMetrics(join(killed, 'metrics.jsonl')).length, 81);
  assertSameRun(killed, straight);
});
