// Training jobs through the API, run by a worker in this process (its trainers in child processes): bad requests
// are 422s naming the field before anything is queued; a job trains while the API answers, registers its model
// with lineage; cancel stops a running job after a checkpoint.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { TrainingWorker } from '../src/jobs/worker.js';
import { testDb } from './helpers/db.js';
import { setup } from './helpers/server.js';
import { WORDS, writeTinyModel } from './helpers/tiny_lm.js';

process.env.INSTRUCTKIT_THREADS = '1';
const root = mkdtempSync(join(tmpdir(), 'ik-jobs-api-'));
after(() => rmSync(root, { recursive: true, force: true }));
const modelsDir = join(root, 'models');
const baseDir = writeTinyModel(join(root, 'base'));
const demos = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ prompt: `say ${WORDS[i % 8]} ${i}`, completion: WORDS[(i + 1) % 8] }));
const tiny = { epochs: 2, batchSize: 4, lr: 0.003, dropout: 0, saveEvery: 1 };

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 45_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('jobs API: 422s, a job trains while the API answers, its model joins the registry; cancel', async () => {
  const { app, admin, store } = await setup({ dbPath: await testDb({ shared: true }), jobsDir: modelsDir });
  const worker = new TrainingWorker({ store, modelsDir, pollMs: 50, heartbeatMs: 100, log: () => {} });
  try {
    const base = (await admin.post('/api/admin/models', { path: baseDir, name: 'base' })).json.model;
    const post = (body: object) => admin.post('/api/admin/jobs', body);

    // Every check comes before anything is queued or written.
    const noData = await post({ kind: 'sft', baseModel: base.id, config: tiny });
    assert.equal(noData.status, 422);
    assert.match(noData.json.message, /no demonstrations yet/);
    await store.importDemonstrations(demos(12));
    const badLr = await post({ kind: 'sft', baseModel: base.id, config: { ...tiny, lr: -1 } });
    assert.equal(badLr.status, 422);
    assert.equal(badLr.json.details.field, 'config.lr');
    assert.match(badLr.json.message, /field "lr" \(--lr\) must be a number/);
    const unknown = await post({ kind: 'sft', baseModel: base.id, config: { batch: 4 } });
    assert.deepEqual([unknown.status, unknown.json.details.field], [422, 'config.batch']);
    const noBase = await post({ kind: 'sft', baseModel: 999, config: tiny });
    assert.deepEqual([noBase.status, noBase.json.details.field], [422, 'baseModel']);
    const noRm = await post({ kind: 'ppo', baseModel: base.id });
    assert.deepEqual([noRm.status, noRm.json.details.field], [422, 'rewardModel']);
    const rmIsLm = await post({ kind: 'ppo', baseModel: base.id, rewardModel: base.id });
    assert.deepEqual([rmIsLm.status, rmIsLm.json.details.field], [422, 'rewardModel']);
    assert.equal((await post({ kind: 'rm', baseModel: base.id })).status, 422, 'no rankings yet');
    assert.equal((await post({ kind: 'xyz', baseModel: base.id })).status, 400);
    assert.equal((await admin.get('/api/admin/jobs')).json.jobs.length, 0);
    assert.equal(existsSync(modelsDir) ? readdirSync(modelsDir).length : 0, 0, 'nothing written');

    const kinds = (await admin.get('/api/admin/jobs/kinds')).json.kinds;
    assert.deepEqual(kinds.map((k: { kind: string }) => k.kind).sort(), ['dpo', 'grpo', 'ppo', 'rm', 'sft']);
    assert.equal(kinds.find((k: { kind: string }) => k.kind === 'sft').schema.properties.epochs.default, 16);

    const created = await post({ kind: 'sft', baseModel: base.id, config: tiny });
    assert.equal(created.status, 201, String(created.body));
    const id = created.json.id;
    const queued = (await admin.get(`/api/admin/jobs/${id}`)).json.job;
    assert.equal(queued.state, 'queued');
    assert.equal(queued.dataCount, 12);
    assert.match(queued.dataHash, /^[0-9a-f]{64}$/);
    assert.equal(queued.config.epochs, 2);
    assert.equal(queued.config.batchSize, 4);
    const snapshot = readFileSync(join(modelsDir, `job-${id}`, 'data.jsonl'), 'utf8');
    assert.equal(snapshot.trim().split('\n').length, 12);

    const running = worker.runOnce();
    // The API answers while the job trains (the trainer is another process).
    // A quiet machine may finish these few steps between two polls: "done" (with its final progress) counts too.
    const seen = await until('a running job with progress', async () => {
      const t0 = Date.now();
      const r = await admin.get(`/api/admin/jobs/${id}`);
      assert.equal(r.status, 200);
      assert.ok(Date.now() - t0 < 2000, 'the API answered promptly');
      const { state, progress } = r.json.job;
      return ((state === 'running' && progress) || state === 'done') && r.json.job;
    });
    assert.ok(seen.progress.total > 0);
    const done = await running;
    assert.equal(done?.state, 'done', done?.log);
    const job = (await admin.get(`/api/admin/jobs/${id}`)).json.job;
    assert.equal(job.progress.step, job.progress.total);
    assert.ok(job.metrics.length > 0 && 'train/loss' in job.metrics.at(-1), 'metrics.jsonl rows');
    assert.match(job.log, /sft/);
    const chart = await admin.get(`/api/admin/jobs/${id}/chart.svg`);
    assert.equal(chart.status, 200);
    assert.match(String(chart.headers['content-type']), /^image\/svg\+xml/);
    assert.match(chart.body as string, /<svg[\s\S]*train\/loss/);
    assert.equal((await admin.get(`/api/admin/jobs/${id}/chart.svg?of=nothing`)).status, 400);

    const registry = (await admin.get('/api/models')).json;
    assert.equal(registry.modelsDir, resolve(modelsDir), 'what the relative paths are relative to, on this server');
    const models = registry.models;
    const made = models.find((m: { id: number }) => m.id === job.model);
    assert.equal(made.name, `sft-${id}`);
    assert.deepEqual([made.kind, made.parentId, made.jobId, made.lineage], ['sft', base.id, id, [base.id]]);
    assert.equal(made.dataHash, job.dataHash);
    assert.equal(made.config.lr, 0.003);
    assert.equal(typeof made.metrics['train/loss'], 'number');
    assert.equal(made.path, `job-${id}/model`, 'recorded relative to the shared models folder');
    assert.ok(existsSync(join(modelsDir, made.path, 'model.safetensors')));

    // Cancel: a long job is stopped after a checkpoint; a finished job cannot be cancelled.
    await store.importDemonstrations(demos(40));
    const long = (await post({ kind: 'sft', baseModel: made.id, config: { ...tiny, epochs: 200 } })).json.id;
    const second = worker.runOnce();
    await until('the long job to train', async () => (await store.jobs.get(long)).metrics.length > 1);
    const asked = await admin.post(`/api/admin/jobs/${long}/cancel`);
    assert.equal(asked.status, 200);
    assert.equal(asked.json.job.cancelRequested, true);
    const stopped = await second;
    assert.equal(stopped?.state, 'cancelled', stopped?.log);
    assert.match(stopped!.log, /SIGTERM: stopping after step/);
    assert.ok(readdirSync(join(modelsDir, `job-${long}`, 'model', 'checkpoints')).length > 0, 'a checkpoint');
    assert.equal((await admin.post(`/api/admin/jobs/${long}/cancel`)).status, 409);
    assert.equal((await admin.get('/api/models')).json.models.length, 2, 'a cancelled job registers nothing');

    // A worker that is stopped (the server shutting down) checkpoints its job and puts it back in the queue; the
    // next claim resumes it from that checkpoint. The two workers mount the models folder at different places (here
    // a link), and both find the job's starting model, itself a job's output, and its checkpoint.
    const again = (await post({ kind: 'sft', baseModel: made.id, config: { ...tiny, epochs: 6 } })).json.id;
    const mount = join(root, 'mount');
    symlinkSync(modelsDir, mount);
    const stopping = new TrainingWorker({ store, modelsDir: mount, pollMs: 50, heartbeatMs: 100, log: () => {} });
    const third = stopping.runOnce();
    await until('the job to train', async () => (await store.jobs.get(again)).metrics.length > 1);
    stopping.stop();
    const released = await third;
    assert.equal(released?.state, 'queued', released?.log);
    assert.equal(released?.worker, null);
    const finished = await worker.runOnce();
    assert.equal(finished?.id, again);
    assert.equal(finished?.state, 'done', finished?.log);
    assert.equal(finished?.attempts, 2);
    assert.match(finished!.log, /sft \(from step \d+\)/, 'resumed from its checkpoint');
    const resumed = await store.models.get(finished!.modelId!);
    assert.deepEqual([resumed.path, resumed.lineage], [`job-${again}/model`, [made.id, base.id]]);

    // A worker that cannot renew its hold (the database out of reach) stops its trainer itself before the job can be
    // taken over; the job is then re-queued as any stale one.
    const fenced = (await post({ kind: 'sft', baseModel: base.id, config: { ...tiny, epochs: 5000 } })).json.id;
    const cutOff = new TrainingWorker({ store, modelsDir, heartbeatMs: 100, staleAfterMs: 1000, log: () => {} });
    const heartbeat = store.jobs.heartbeat;
    store.jobs.heartbeat = async () => {
      throw new Error('connection terminated');
    };
    const t0 = Date.now();
    const orphan = await cutOff.runOnce().finally(() => {
      store.jobs.heartbeat = heartbeat;
    });
    assert.ok(Date.now() - t0 < 20_000, 'the trainer was stopped, not run to its end');
    assert.deepEqual([orphan?.id, orphan?.state], [fenced, 'running'], 'left for the stale-job sweep');
    assert.deepEqual((await store.jobs.reclaimStale(store.now() + 1)).requeued, [fenced]);
    await store.jobs.cancel(fenced);
  } finally {
    worker.stop();
    await app.close();
  }
});
