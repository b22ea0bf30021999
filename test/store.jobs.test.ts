// The model registry and the training job queue in the store (SQLite here; store.jobs.postgres.test.ts on PostgreSQL).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { openStore, type Store, StoreError } from '../src/store/index.js';
import { testDb, testDialect } from './helpers/db.js';

async function withStore(fn: (s: Store, clock: { t: number }) => Promise<void>, shared = false) {
  const clock = { t: 1_000_000 };
  const s = await openStore({ db: await testDb({ shared }), now: () => clock.t });
  try {
    await fn(s, clock);
  } finally {
    await s.close();
  }
}

const base = { name: 'base', path: '/m/base', kind: 'base', head: 'causal' } as const;

test('registry: a folder is registered once, versions carry their lineage', async () => {
  await withStore(async (s) => {
    const a = await s.models.register(base);
    assert.equal(a.created, true);
    const again = await s.models.register({ ...base, name: 'other name' });
    assert.equal(again.created, false);
    assert.equal(again.model.id, a.model.id);
    assert.equal(again.model.name, 'base');
    const sft = await s.models.register({
      name: 'sft-1',
      path: '/m/job-1/model',
      kind: 'sft',
      head: 'causal',
      parentId: a.model.id,
      dataHash: 'abc',
      config: { lr: 0.001 },
      metrics: { 'train/loss': 1.5 },
      params: 1234,
    });
    const ppo = await s.models.register({
      name: 'ppo-2',
      path: '/m/job-2/model',
      kind: 'ppo',
      head: 'causal',
      parentId: sft.model.id,
    });
    assert.deepEqual(ppo.model.lineage, [sft.model.id, a.model.id]);
    const list = await s.models.list();
    assert.deepEqual(
      list.map((m) => [m.name, m.lineage]),
      [
        ['base', []],
        ['sft-1', [a.model.id]],
        ['ppo-2', [sft.model.id, a.model.id]],
      ],
    );
    assert.deepEqual(list[1].config, { lr: 0.001 });
    assert.deepEqual(list[1].metrics, { 'train/loss': 1.5 });
    assert.equal(list[1].params, 1234);
    await assert.rejects(s.models.get(99), (e: unknown) => e instanceof StoreError && e.code === 'not_found');
    await assert.rejects(s.models.register({ ...base, path: '/x', parentId: 99 }), StoreError);
  });
});

test('registry: relocate records folders at new paths, never onto a path another version holds', async () => {
  await withStore(async (s) => {
    const old = await s.models.register(base);
    const job = await s.models.register({ ...base, name: 'sft-1', path: '/m/job-1/model' });
    const taken = await s.models.register({ ...base, name: 'sft-1b', path: 'job-1/model' });
    const inModels = (p: string) => (p.startsWith('/m/') ? p.slice(3) : p);
    assert.equal(await s.models.relocate(inModels), 1, 'base moved; job-1/model is already taken');
    const paths = new Map((await s.models.list()).map((m) => [m.id, m.path]));
    assert.deepEqual(
      [paths.get(old.model.id), paths.get(job.model.id), paths.get(taken.model.id)],
      ['base', '/m/job-1/model', 'job-1/model'],
    );
    assert.equal(await s.models.relocate(inModels), 0, 'nothing left to move');
    assert.equal((await s.models.register({ ...base, name: 'again', path: 'base' })).model.id, old.model.id);
  });
});

async function queue(s: Store) {
  const { model } = await s.models.register(base);
  const job = await s.jobs.enqueue(
    { kind: 'sft', baseModelId: model.id, config: { lr: 1 }, dataHash: 'h', dataCount: 3, maxAttempts: 2 },
    (id) => `/jobs/job-${id}`,
  );
  return { model, job };
}

test('jobs: enqueue, claim once, heartbeat, finish registers the model with its lineage', async () => {
  await withStore(async (s, clock) => {
    const { model, job } = await queue(s);
    assert.equal(job.state, 'queued');
    assert.equal(job.dir, `/jobs/job-${job.id}`);
    const claimed = await s.jobs.claim('w1');
    assert.equal(claimed?.id, job.id);
    assert.equal(claimed?.attempts, 1);
    assert.equal(await s.jobs.claim('w2'), null, 'a running job is not claimed again');
    clock.t += 1000;
    const hb = await s.jobs.heartbeat(job.id, 'w1', {
      progress: { step: 2, total: 4, etaS: 3 },
      metrics: [{ step: 1, 'train/loss': 2 }],
      log: 'sft 2/4',
    });
    assert.deepEqual(hb, { held: true, cancel: false });
    assert.deepEqual((await s.jobs.heartbeat(job.id, 'w2')).held, false, 'another worker does not hold it');
    const got = await s.jobs.get(job.id);
    assert.deepEqual(got.progress, { step: 2, total: 4, etaS: 3 });
    assert.equal(got.log, 'sft 2/4');
    assert.equal(got.heartbeatAt, clock.t);
    assert.equal(
      await s.jobs.finish(job.id, 'w2', { state: 'failed', error: 'x' }),
      false,
      'only its worker finishes it',
    );
    const ok = await s.jobs.finish(job.id, 'w1', {
      state: 'done',
      model: {
        name: 'sft-1',
        path: '/jobs/job-1/model',
        kind: 'sft',
        head: 'causal',
        parentId: model.id,
        jobId: job.id,
        dataHash: 'h',
      },
      // What the run wrote beside its model (as PPO's moving average in OUT/ema): a version whose parent is the model.
      derived: [{ name: 'sft-1-ema', path: '/jobs/job-1/model/ema', kind: 'sft', head: 'causal', jobId: job.id }],
    });
    assert.equal(ok, true);
    const done = await s.jobs.get(job.id);
    assert.equal(done.state, 'done');
    const out = await s.models.get(done.modelId!);
    assert.deepEqual([out.kind, out.jobId, out.lineage, out.dataHash], ['sft', job.id, [model.id], 'h']);
    const ema = (await s.models.list()).find((m) => m.name === 'sft-1-ema')!;
    assert.deepEqual([ema.path, ema.jobId, ema.lineage], ['/jobs/job-1/model/ema', job.id, [out.id, model.id]]);
  });
});

test('jobs: a stale job is re-queued, then failed after its attempts; cancel', async () => {
  await withStore(async (s, clock) => {
    const { job } = await queue(s);
    await s.jobs.claim('w1');
    clock.t += 10_000;
    assert.deepEqual(await s.jobs.reclaimStale(clock.t - 60_000), { requeued: [], failed: [] }, 'not stale yet');
    assert.deepEqual(await s.jobs.reclaimStale(clock.t - 5_000), { requeued: [job.id], failed: [] });
    assert.equal((await s.jobs.heartbeat(job.id, 'w1')).held, false, 'the dead worker lost it');
    const second = await s.jobs.claim('w2');
    assert.equal(second?.attempts, 2);
    clock.t += 10_000;
    assert.deepEqual(await s.jobs.reclaimStale(clock.t - 5_000), { requeued: [], failed: [job.id] });
    const failed = await s.jobs.get(job.id);
    assert.equal(failed.state, 'failed');
    assert.match(failed.error!, /w2 stopped heartbeating \(attempt 2 of 2\)/);
    await assert.rejects(s.jobs.cancel(job.id), (e: unknown) => e instanceof StoreError && e.code === 'conflict');

    const { job: j2 } = await queue(s);
    assert.equal((await s.jobs.cancel(j2.id)).state, 'cancelled');
    assert.equal(await s.jobs.claim('w1'), null, 'a cancelled job is never claimed');
    const { job: j3 } = await queue(s);
    await s.jobs.claim('w1');
    const asked = await s.jobs.cancel(j3.id);
    assert.deepEqual([asked.state, asked.cancelRequested], ['running', true]);
    assert.deepEqual(await s.jobs.heartbeat(j3.id, 'w1'), { held: true, cancel: true });
    await s.jobs.finish(j3.id, 'w1', { state: 'cancelled' });
    assert.equal((await s.jobs.get(j3.id)).state, 'cancelled');
  });
});

test('jobs: two workers racing for one job on two connections claim it once', async () => {
  const db = await testDb({ shared: true });
  const stores: Store[] = [];
  // Opened one after another: each migrates (a no-op once the first has).
  for (let i = 0; i < 4; i++) stores.push(await openStore({ db }));
  try {
    const { job } = await queue(stores[0]);
    const claims = await Promise.all(stores.map((s, i) => s.jobs.claim(`w${i}`)));
    const winners = claims.filter((c) => c !== null);
    assert.equal(winners.length, 1);
    assert.equal(winners[0]!.id, job.id);
    assert.equal((await stores[0].jobs.get(job.id)).attempts, 1);
  } finally {
    for (const s of stores) await s.close();
  }
});

// Machines' clocks differ. On PostgreSQL every process keeps the database server's time, so a worker whose clock runs
// an hour behind heartbeats a "now" that the others read as now, and its live job is not taken for dead.
test("jobs: a worker whose clock runs an hour behind keeps its job (the store keeps the database's time)", {
  skip: testDialect() === 'sqlite' && 'one file on one machine, one clock',
}, async () => {
  const url = await testDb();
  const s = await openStore({ db: url });
  try {
    const { job } = await queue(s);
    const storeModule = new URL('../src/store/index.js', import.meta.url).href;
    const behind = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const real = Date.now;
        Date.now = () => real() - 3_600_000;
        const { openStore } = await import(${JSON.stringify(storeModule)});
        const s = await openStore({ db: ${JSON.stringify(url)} });
        await s.jobs.claim('behind');
        process.stdout.write(String(s.now() - Date.now()));
        await s.close();`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(behind.status, 0, behind.stderr);
    const shift = Number(behind.stdout);
    assert.ok(Math.abs(shift - 3_600_000) < 5_000, `its store's clock is ${shift} ms ahead of its own`);
    assert.deepEqual(await s.jobs.reclaimStale(s.now() - 30_000), { requeued: [], failed: [] });
    assert.deepEqual([(await s.jobs.get(job.id)).state, (await s.jobs.get(job.id)).worker], ['running', 'behind']);
  } finally {
    await s.close();
  }
});

// A clock stepped after start-up (NTP just after boot) is followed: the shift is measured again, in the background.
test("jobs: the store follows its process's clock when it is stepped after start-up", {
  skip: testDialect() === 'sqlite' && 'one file on one machine, one clock',
}, async () => {
  const s = await openStore({ db: await testDb() });
  const real = Date.now;
  try {
    assert.ok(Math.abs(s.now() - real()) < 5_000, 'the database and this process share a machine here');
    Date.now = () => real() + 7_200_000; // stepped two hours ahead: over a minute since the last measure
    const stale = s.now();
    assert.ok(stale - real() > 7_000_000, 'the shift measured at start-up still applies until it is measured again');
    let now = stale;
    for (let i = 0; i < 100 && Math.abs(now - real()) > 5_000; i++) {
      await new Promise((r) => setTimeout(r, 20));
      now = s.now();
    }
    assert.ok(Math.abs(now - real()) < 5_000, `after the new measure the store is ${now - real()} ms off the database`);
  } finally {
    Date.now = real;
    await s.close();
  }
});
