import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { run as sampleCli } from '../src/cli/commands/sample.js';
import { type GenerateOptions, GPT2, type GPT2Config, generate, savePretrained } from '../src/models/index.js';
import { Rng } from '../src/tensor/index.js';
import { type Tokenizer, textStreamer, trainBpe } from '../src/tokenizer/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ik-sample-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const execFileP = promisify(execFile);
const sample = async (args: string[]) => (await execFileP(process.execPath, [cli, 'sample', ...args])).stdout;

const tok = trainBpe(['the cat sat on the mat. the dog ran to the house. hello world, hello there.'], {
  vocabSize: 300,
  chatTokens: true,
});
const gptConfig = (over: Partial<GPT2Config> = {}): GPT2Config => ({
  vocabSize: tok.vocabSize,
  nPositions: 64,
  nEmbd: 32,
  nLayer: 1,
  nHead: 2,
  layerNormEpsilon: 1e-5,
  activation: 'gelu_new',
  residPdrop: 0,
  embdPdrop: 0,
  tieWordEmbeddings: true,
  ...over,
});

function saveModel(name: string, model: GPT2, tokenizer: Tokenizer = tok): string {
  const out = join(dir, name);
  savePretrained(model, out);
  tokenizer.save(out);
  return out;
}

const random = new GPT2(gptConfig(), new Rng(3)).eval();
const randomDir = saveModel('random', random);

// What the CLI should print: the decoded new tokens of generate(), EOS left out, and a newline.
function expected(ids: number[], opts: Omit<GenerateOptions, 'eosTokenIds'>, eos = [tok.eosId!]): string {
  const g = generate(random, [ids], { ...opts, eosTokenIds: eos });
  const tokens = g.finishReasons[0] === 'eos' ? g.tokens[0].slice(0, -1) : g.tokens[0];
  return `${tok.decode(tokens, { skipSpecialTokens: true })}\n`;
}

test('sample prints the completion: greedy, seeded top-k/top-p sampling, and the chat template', async () => {
  const prompt = 'the cat sat';
  const ids = tok.encode(prompt);
  const chatIds = tok.encode(tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }));
  const chatEos = [tok.eosId!, tok.tokenToId('<|end|>')!];
  const [greedy, sampled, sampledAgain, chat] = await Promise.all([
    sample(['--model', randomDir, prompt, '--temperature', '0', '--max-tokens', '12']),
    sample(['--model', randomDir, prompt, '--temperature', '0.8', '--top-k', '20', '--top-p', '0.9', '--seed', '5']),
    sample(['--model', randomDir, prompt, '--temperature', '0.8', '--top-k', '20', '--top-p', '0.9', '--seed', '5']),
    sample(['--model', randomDir, prompt, '--chat', '--max-tokens', '10', '--seed', '2']),
  ]);
  assert.equal(greedy, expected(ids, { maxNewTokens: 12, temperature: 0 }));
  assert.ok(greedy.length > 1, 'greedy printed something');
  // Without --max-tokens, up to 128 tokens or what the 64-token context leaves.
  const sampledWant = expected(ids, { maxNewTokens: 64 - ids.length, temperature: 0.8, topK: 20, topP: 0.9, seed: 5 });
  assert.equal(sampled, sampledWant);
  assert.equal(sampledAgain, sampled);
  assert.equal(chat, expected(chatIds, { maxNewTokens: 10, temperature: 1, seed: 2 }, chatEos));
});

test('sample stops at the EOS token named by tokenizer_config.json', async () => {
  // A model that always predicts "a": the final norm outputs ones, and only the head row of "a" is non-zero.
  const a = tok.tokenToId('a')!;
  const model = new GPT2(gptConfig({ tieWordEmbeddings: false }), new Rng(1));
  model.ln_f.weight.f32.fill(0);
  model.ln_f.bias!.f32.fill(1);
  model.lm_head!.weight.f32.fill(0);
  model.lm_head!.weight.f32.fill(1, a * 32, (a + 1) * 32);
  const plain = saveModel('always-a', model);
  const stopsAtA = saveModel('always-a-eos', model);
  const cfgPath = join(stopsAtA, 'tokenizer_config.json');
  writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, 'utf8')), eos_token: 'a' }));
  const [runs, stops] = await Promise.all([
    sample(['--model', plain, 'the', '--max-tokens', '5']),
    sample(['--model', stopsAtA, 'the', '--max-tokens', '5']),
  ]);
  assert.equal(runs, 'aaaaa\n');
  assert.equal(stops, '\n');
});

test('sample streams: one write per new piece of text while generating', async () => {
  const writes: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => writes.push(chunk) > 0) as typeof write;
  try {
    assert.equal(await sampleCli(['--model', randomDir, 'hello', '--temperature', '0', '--max-tokens', '8']), 0);
  } finally {
    process.stdout.write = write;
  }
  assert.equal(writes.join(''), expected(tok.encode('hello'), { maxNewTokens: 8, temperature: 0 }));
  assert.ok(writes.filter((w) => w !== '').length >= 3, `writes: ${JSON.stringify(writes)}`);
});

test('textStreamer holds back split UTF-8 characters and prints each new piece once', () => {
  const text = 'héllo 世界 🙂 the cat';
  const ids = tok.encode(text);
  const stream = textStreamer(tok);
  const pieces = ids.map((id) => stream.push(id));
  pieces.push(stream.flush());
  assert.equal(pieces.join(''), text);
  assert.ok(pieces.every((p) => !p.includes('\uFFFD')));
  assert.ok(
    pieces.slice(0, -1).some((p) => p === ''),
    'some bytes of a multi-byte character were held back',
  );
});

test('sample rejects bad input with the flag, file or field named, before generating', async () => {
  const reject = (args: string[], re: RegExp) => assert.rejects(sampleCli(args), re);
  await reject(['hello'], /--model DIR is required/);
  await reject(['--model', randomDir], /a prompt is required/);
  await reject(['--model', randomDir, 'a', 'b'], /give exactly one prompt/);
  await reject(['--model', join(dir, 'nowhere'), 'hi'], /nowhere: model folder not found/);
  await reject(['--model', randomDir, 'hi', '--temperature=-1'], /--temperature: expected a number >= 0, got "-1"/);
  await reject(['--model', randomDir, 'hi', '--top-p', '1.5'], /--top-p: expected a number in \(0, 1\]/);
  await reject(['--model', randomDir, 'hi', '--top-k', '2.5'], /--top-k: expected an integer >= 0/);
  await reject(['--model', randomDir, 'hi', '--max-tokens', '0'], /--max-tokens: expected an integer >= 1/);
  await reject(
    ['--model', randomDir, 'hi', '--max-tokens', 'lots'],
    /--max-tokens: expected an integer >= 1, got "lots"/,
  );
  await reject(['--model', randomDir, 'hi', '--seed', 'x'], /--seed: expected an integer/);
  await reject(['--model', randomDir, 'hi', '--max-tokens', '1000'], /exceed the model's context of 64/);

  const notModel = join(dir, 'not-a-model');
  tok.save(notModel);
  await reject(['--model', notModel, 'hi'], /not-a-model\/config\.json: file not found/);
  writeFileSync(join(notModel, 'config.json'), JSON.stringify({ model_type: 'bert' }));
  await reject(['--model', notModel, 'hi'], /config\.json: field "model_type" "bert" is not supported/);
  writeFileSync(
    join(notModel, 'config.json'),
    JSON.stringify({ model_type: 'gpt2', vocab_size: 300, n_positions: 64, n_embd: 'big' }),
  );
  await reject(['--model', notModel, 'hi'], /config\.json: field "n_embd" must be a number, got "big"/);
  const noTokenizer = join(dir, 'no-tokenizer');
  mkdirSync(noTokenizer);
  await reject(['--model', noTokenizer, 'hi'], /no-tokenizer\/tokenizer\.json/);
  const smallVocab = saveModel('small-vocab', new GPT2(gptConfig({ vocabSize: 100 }), new Rng(1)));
  await reject(
    ['--model', smallVocab, 'hi'],
    /config\.json: field "vocab_size" is 100, but .*tokenizer\.json has 2\d\d ids/,
  );
});
