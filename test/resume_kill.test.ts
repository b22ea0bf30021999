// Every training stage killed with SIGKILL after a checkpoint and resumed writes the same metrics and the same
// weights as a run that was never interrupted (same seed, same thread count).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Rng } from '../src/tensor/index.js';
import { assertSameRun, killAfterFirstCheckpoint, spawnCli } from './helpers/cli.js';
import { WORDS, writeJsonl, writeTinyModel } from './helpers/tiny_lm.js';

const dir = mkdtempSync(join(tmpdir(), 'ik-kill-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const base = writeTinyModel(join(dir, 'base'));

async function killResumeCompare(name: string, args: (out: string) => string[]): Promise<void> {
  const killed = join(dir, `${name}-killed`);
  await killAfterFirstCheckpoint(args(killed), killed);
  const resumed = await spawnCli([...args(killed), '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const straight = join(dir, `${name}-straight`);
  const whole = await spawnCli(args(straight));
  assert.equal(whole.code, 0, whole.stderr);
  assertSameRun(killed, straight);
}

test('sft killed mid-epoch and resumed repeats the uninterrupted run', async () => {
  const data = writeJsonl(
    join(dir, 'demos.jsonl'),
    Array.from({ length: 40 }, (_, i) => ({
      prompt: `say ${WORDS[i % 8]}`,
      completion: `${WORDS[i % 8]} ${WORDS[(i + 3) % 8]}`,
    })),
  );
  const cfg = join(dir, 'sft.json');
  writeFileSync(cfg, JSON.stringify({ epochs: 2, batchSize: 4, lr: 3e-3, saveEvery: 3, dropout: 0.1, seed: 5 }));
  await killResumeCompare('sft', (out) => ['sft', '--model', base, '--data', data, '--out', out, '--config', cfg]);
});

test('rm killed mid-epoch and resumed repeats the uninterrupted run', async () => {
  const rng = new Rng(4);
  const data = writeJsonl(
    join(dir, 'rankings.jsonl'),
    Array.from({ length: 48 }, () => {
      const picked = [...WORDS].sort(() => rng.next() - 0.5).slice(0, 4);
      return { prompt: `say ${WORDS[rng.int(8)]}`, responses: picked, ranking: [2, 0, 3, 1] };
    }),
  );
  const cfg = join(dir, 'rm.json');
  writeFileSync(cfg, JSON.stringify({ epochs: 2, batchSize: 4, lr: 1e-2, saveEvery: 3 }));
  await killResumeCompare('rm', (out) => ['rm', '--model', base, '--data', data, '--out', out, '--config', cfg]);
});

test('ppo-ptx killed after a checkpoint and resumed repeats the uninterrupted run', async () => {
  const prompts = writeJsonl(
    join(dir, 'prompts.jsonl'),
    WORDS.map((w) => ({ prompt: `say ${w}` })),
  );
  const corpus = join(dir, 'corpus.txt');
  writeFileSync(
    corpus,
    WORDS.map((w) => `say ${w} then ${w} please.`)
      .join(' ')
      .repeat(5),
  );
  const cfg = join(dir, 'ppo.yaml');
  writeFileSync(
    cfg,
    'batchSize: 2\nminiBatchSize: 1\nppoEpochs: 1\nmaxNewTokens: 4\nptxSeqLen: 16\nptxBatchSize: 1\nsaveEvery: 1\nsampleEvery: 0\n',
  );
  await killResumeCompare('ppo', (out) => [
    ...['ppo', '--policy', base, '--reward', 'count:e', '--prompts', prompts, '--out', out, '--config', cfg],
    ...['--ptx', corpus, '--ptx-coef', '0.5', '--steps', '5', '--seed', '3'],
  ]);
});
