// kill -9 a worker process mid-job (an SFT job, a PPO job): its trainer dies with it, another worker re-queues the job once its heartbeat is
// stale and resumes it from the last checkpoint, ending with the same metrics and weights as an uninterrupted run.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { enqueueJob, type JobRequest, registerFolder } from '../src/jobs/queue.js';
import { loadPretrained, ScalarModel, saveScalarPretrained } from '../src/models/index.js';
import { openStore } from '../src/store/index.js';
import { Rng } from '../src/tensor/index.js';
import { listCheckpoints } from '../src/train/checkpoint.js';
import { assertSameRun } from './helpers/cli.js';
import { testDb } from './helpers/db.js';
import { WORDS, writeTinyModel } from './helpers/tiny_lm.js';

const root = mkdtempSync(join(tmpdir(), 'ik-jobs-kill-'));
after(() => rmSync(root, { recursive: true, force: true }));
const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

function startWorker(db: string, modelsDir: string, id: string): ChildProcess & { output: () => string } {
  const args = ['worker', '--db', db, '--models', modelsDir, '--id', id];
  const timing = ['--poll-ms', '100', '--heartbeat-ms', '200', '--stale-after-ms', '3000'];
  // One thread in every trainer: bit-identical sums need an equal thread count.
  const env = { ...process.env, INSTRUCTKIT_THREADS: '1' };
  const child = spawn(process.execPath, [cli, ...args, ...timing], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let out = '';
  child.stderr!.on('data', (d) => {
    out += d;
  });
  return Object.assign(child, { output: () => out });
}

const exited = (c: ChildProcess) => new Promise((done) => c.once('close', done));

async function until<T>(what: string, fn: () => T | false | Promise<T | false>, ms = 50_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function killAndResume(
  request: (ids: { base: number; rm: number }) => Omit<JobRequest, 'baseModel'>,
  dataKind: 'demonstrations' | 'prompts',
) {
  const db = await testDb({ shared: true });
  const store = await openStore({ db });
  const modelsDir = join(root, `models-${dataKind}`);
  const workers: ChildProcess[] = [];
  try {
    const baseDir = writeTinyModel(join(root, `base-${dataKind}`));
    const { model: base } = await registerFolder(store, baseDir);
    // A reward model on the same vocabulary: the base model with a fresh scalar head.
    const rmDir = join(root, `rm-${dataKind}`);
    saveScalarPretrained(new ScalarModel(loadPretrained(baseDir), new Rng(5)), rmDir);
    copyFileSync(join(baseDir, 'tokenizer.json'), join(rmDir, 'tokenizer.json'));
    const { model: rm } = await registerFolder(store, rmDir);
    await store.importDemonstrations(
      Array.from({ length: 40 }, (_, i) => ({ prompt: `say ${WORDS[i % 8]} ${i}`, completion: WORDS[(i + 3) % 8] })),
    );
    const req = { ...request({ base: base.id, rm: rm.id }), baseModel: base.id };
    const first = await enqueueJob(store, modelsDir, req);

    const a = startWorker(db, modelsDir, 'a');
    workers.push(a);
    const run = join(modelsDir, first.dir, 'model');
    await until('worker a to checkpoint the job', () => listCheckpoints(join(run, 'checkpoints')).length > 0);
    a.kill('SIGKILL');
    await exited(a);
    const killed = await store.jobs.get(first.id);
    assert.equal(killed.state, 'running', `killed before the job ended:\n${a.output()}`);
    assert.equal(killed.worker, 'a');

    const b = startWorker(db, modelsDir, 'b');
    workers.push(b);
    const resumed = await until('worker b to finish the job', async () => {
      const j = await store.jobs.get(first.id);
      return j.state !== 'running' && j.state !== 'queued' && j;
    });
    assert.equal(resumed.state, 'done', `${resumed.error}\n${resumed.log}\n${b.output()}`);
    assert.equal(resumed.attempts, 2);
    assert.match(b.output(), new RegExp(`job ${first.id}: its worker stopped heartbeating; re-queued`));
    assert.match(resumed.log, /--- attempt 2 \(worker b\)/);
    assert.match(resumed.log, /from step \d+/, 'the second attempt resumed from a checkpoint');

    // The same job again, uninterrupted: the same snapshot, metrics and weights.
    const second = await enqueueJob(store, modelsDir, req);
    assert.equal(second.dataHash, first.dataHash);
    const straight = await until('the uninterrupted job', async () => {
      const j = await store.jobs.get(second.id);
      return (j.state === 'done' || j.state === 'failed') && j;
    });
    assert.equal(straight.state, 'done', straight.log);
    assertSameRun(run, join(modelsDir, second.dir, 'model'));
    b.kill('SIGTERM');
    await exited(b);
  } finally {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await store.close();
  }
}

test('kill -9 a worker mid-job (sft): another worker resumes it exactly', () =>
  killAndResume(
    () => ({ kind: 'sft', config: { epochs: 4, batchSize: 4, lr: 0.003, dropout: 0, saveEvery: 3 } }),
    'demonstrations',
  ));

test('kill -9 a worker mid-job (ppo against a registered reward model): another worker resumes it exactly', () =>
  killAndResume(
    ({ rm }) => ({
      kind: 'ppo',
      rewardModel: rm,
      config: { steps: 6, batchSize: 2, miniBatchSize: 1, ppoEpochs: 1, maxNewTokens: 4, saveEvery: 1, seed: 3 },
    }),
    'prompts',
  ));
