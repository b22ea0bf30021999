// Every stage formats prompts the same way by default: sft → rm → ppo through the CLI on a tiny chat model, and the
// prompt tokens PPO samples from are the ones SFT trained on.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeDemonstrations, readDemonstrations } from '../src/rlhf/data.js';
import { CHAT_TOKENS, Formatter, Tokenizer } from '../src/tokenizer/index.js';
import { spawnCli } from './helpers/cli.js';
import { WORDS, writeJsonl, writeTinyModel } from './helpers/tiny_lm.js';

const dir = mkdtempSync(join(tmpdir(), 'ik-format-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

test('sft → rm → ppo: PPO samples from the prompt tokens SFT trained on (the chat template), unless told otherwise', async () => {
  const base = writeTinyModel(join(dir, 'base'));
  const prompts = WORDS.slice(0, 4).map((w) => `say ${w}`);
  const demos = writeJsonl(
    join(dir, 'demos.jsonl'),
    prompts.map((prompt, i) => ({ prompt, completion: WORDS[(i + 1) % 8] })),
  );
  const rankings = writeJsonl(
    join(dir, 'rankings.jsonl'),
    prompts.map((prompt, i) => ({ prompt, chosen: WORDS[(i + 1) % 8], rejected: 'no' })),
  );
  const promptFile = writeJsonl(
    join(dir, 'prompts.jsonl'),
    prompts.map((prompt) => ({ prompt })),
  );
  const ok = async (args: string[]) => {
    const r = await spawnCli(args);
    assert.equal(r.code, 0, r.stderr);
  };
  const small = ['--epochs', '1', '--batch-size', '2', '--val-fraction', '0'];
  await ok(['sft', '--model', base, '--data', demos, '--out', join(dir, 'sft'), ...small]);
  await ok(['rm', '--model', join(dir, 'sft'), '--data', rankings, '--out', join(dir, 'rm'), ...small]);
  const ppo = (out: string, extra: string[] = []) =>
    ok([
      ...['ppo', '--policy', join(dir, 'sft'), '--reward', join(dir, 'rm'), '--prompts', promptFile, '--out', out],
      ...['--steps', '1', '--batch-size', '4', '--mini-batch-size', '2', '--ppo-epochs', '1', '--max-new-tokens', '4'],
      ...['--sample-every', '1', ...extra],
    ]);
  await ppo(join(dir, 'ppo'));

  // What SFT trained on: its demonstrations encoded in the format it recorded.
  const sftFormat = json(join(dir, 'sft', 'sft_config.json')).promptFormat;
  assert.equal(sftFormat, 'chat');
  const tok = Tokenizer.fromDir(base);
  const trained = encodeDemonstrations(readDemonstrations(demos).records, new Formatter(tok, base, sftFormat), 48);
  const sftPrompt = new Map(
    trained.records.map((e, i) => [prompts[i], e.ids.slice(0, e.promptLength)] as [string, number[]]),
  );
  assert.equal(json(join(dir, 'rm', 'rm_config.json')).promptFormat, 'chat');
  assert.equal(json(join(dir, 'ppo', 'ppo_config.json')).promptFormat, 'chat');
  const samples = readFileSync(join(dir, 'ppo', 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { prompt: string; prompt_ids: number[] });
  assert.equal(samples.length, 4);
  const user = tok.tokenToId(CHAT_TOKENS.user);
  for (const s of samples) {
    assert.deepEqual(s.prompt_ids, sftPrompt.get(s.prompt), s.prompt);
    assert.ok(s.prompt_ids.includes(user!), 'the prompt is in the chat template');
  }

  // An explicit flag changes it.
  await ppo(join(dir, 'ppo-raw'), ['--prompt-format', 'raw']);
  for (const line of readFileSync(join(dir, 'ppo-raw', 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')) {
    const s = JSON.parse(line) as { prompt: string; prompt_ids: number[] };
    assert.deepEqual(s.prompt_ids, tok.encode(s.prompt));
  }
});
