// Statements (round-trips, BEGIN and COMMIT included) per request on the labeling hot path, so that they cannot
// creep back up: on PostgreSQL each one is a network round-trip, and under load a request's latency is mostly
// those round-trips queueing for the CPU (bench:server). The ceilings are what the routes take today. A replay costs
// one more than it did (it tries the work, which fails, before it reads the key) so that a first submission costs one
// fewer: first submissions are the common case.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { openPostgresStore, openStore } from '../src/store/index.js';
import { testDb, testDialect } from './helpers/db.js';
import { labeler, setup } from './helpers/server.js';

test('labeling hot path: statements per request stay within their ceilings', async () => {
  let sent: string[] = [];
  const store = await openStore({ db: await testDb(), onQuery: (sql) => sent.push(sql) });
  const { app, admin } = await setup({ store, now: store.now });
  await admin.req('PUT', '/api/admin/settings', { screeningRequired: false, overlap: 0 });
  const ids = (await admin.post('/api/admin/prompts', { prompts: ['one', 'two', 'three'].map((text) => ({ text })) }))
    .json.ids;
  await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds: ids });
  const lab = await labeler(app, admin, 'lab');
  const counted = async <T>(call: () => Promise<T>): Promise<[T, number]> => {
    sent = [];
    const r = await call();
    return [r, sent.length];
  };
  // The first hand-out also sweeps for overdue assignments; later ones within the second do not.
  const first = (await lab.post('/api/tasks/next')).json.assignment.id;
  await lab.post(`/api/assignments/${first}/submit`, { completion: 'x' }, { 'idempotency-key': 'count-key-0' });
  const ceilings = { next: testDialect() === 'postgres' ? 7 : 6, submit: 6, replay: 6 };
  for (const round of [1, 2]) {
    const key = { 'idempotency-key': `count-key-${round}` };
    const [a, next] = await counted(() => lab.post('/api/tasks/next'));
    const id = a.json.assignment.id;
    const [s, submit] = await counted(() => lab.post(`/api/assignments/${id}/submit`, { completion: 'x' }, key));
    const [r, replay] = await counted(() => lab.post(`/api/assignments/${id}/submit`, { completion: 'x' }, key));
    assert.equal(s.status, 200);
    assert.equal(r.json.storedId, s.json.storedId);
    assert.ok(next > 0, 'every statement is seen');
    assert.ok(next <= ceilings.next, `next: ${next} statements, ceiling ${ceilings.next}`);
    assert.ok(submit <= ceilings.submit, `submit: ${submit} statements, ceiling ${ceilings.submit}`);
    assert.ok(replay <= ceilings.replay, `replay: ${replay} statements, ceiling ${ceilings.replay}`);
  }
  await app.close();
  await store.close();
});

// The planner may answer "a task this labeler was never given" with an anti-join that reads every assignment in the
// table on each hand-out, so that handing out work slows down as labels pile up. Counted in pages, not time.
test('handing out a task reads about as many pages with thousands of assignments as with a few', {
  skip: testDialect() === 'sqlite' && 'a PostgreSQL plan (SQLite checks each candidate with an index probe)',
}, async (t) => {
  const url = await testDb();
  let sent: [string, readonly unknown[]][] = [];
  const store = await openStore({ db: url, onQuery: (text, params) => sent.push([text, params]) });
  const { app, admin } = await setup({ store, now: store.now });
  await admin.req('PUT', '/api/admin/settings', { screeningRequired: false, overlap: 0 });
  const prompts = Array.from({ length: 6000 }, (_, i) => ({ text: `prompt ${i}` }));
  const ids = (await admin.post('/api/admin/prompts', { prompts })).json.ids;
  await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds: ids });
  const lab = await labeler(app, admin, 'lab');
  const other = await labeler(app, admin, 'other');
  const explain = new pg.Client({ connectionString: url });
  await explain.connect();
  t.after(() => Promise.all([explain.end(), app.close()]).then(() => store.close()));
  // One hand-out's pick, replayed under EXPLAIN ANALYZE in a transaction that is rolled back.
  const pagesPerPick = async () => {
    await sql`vacuum analyze tasks, assignments`.execute(store.db);
    sent = [];
    const { id } = (await lab.post('/api/tasks/next')).json.assignment;
    await lab.post(`/api/assignments/${id}/submit`, { completion: 'x' }, { 'idempotency-key': `pick-key-${id}` });
    const [text, params] = sent.find(([q]) => /^update "tasks"/.test(q))!;
    await explain.query('begin');
    const { rows } = await explain.query(`explain (analyze, buffers, format json) ${text}`, params as unknown[]);
    await explain.query('rollback');
    const plan = rows[0]['QUERY PLAN'][0].Plan;
    return plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
  };
  // Finished assignments on the oldest tasks, half of them the labeler's own.
  const finish = async (n: number) => {
    await sql`insert into assignments (task_id, user_id, status, created_at)
      select id, case when id % 2 = 0 then ${lab.id}::integer else ${other.id}::integer end, 'done', 0 from tasks
      where assigned_count = 0 order by id limit ${n}`.execute(store.db);
    await sql`update tasks set assigned_count = 1 where id in (select task_id from assignments)`.execute(store.db);
  };
  await finish(1000);
  const few = await pagesPerPick();
  await finish(4000);
  const many = await pagesPerPick();
  assert.ok(many <= few + 5, `pages per pick: ${few} at 1000 assignments, ${many} at 5000`);
});

// PostgreSQL keeps a prepared statement's generic plan for the table sizes at the moment it made it; one made while a
// table was a page (a full scan) would otherwise last until the table is next analyzed, however big it has grown.
test('a connection plans its statements anew as their tables grow', {
  skip: testDialect() === 'sqlite' && 'PostgreSQL plan caching',
}, async () => {
  const url = await testDb();
  const text = 'select id from plan_probe where k = $1';
  const planAfterGrowth = async (planRefreshMs: number) => {
    const store = await openPostgresStore({ url, poolSize: 1, planRefreshMs });
    try {
      await sql`drop table if exists plan_probe`.execute(store.db);
      await sql`create table plan_probe (id serial primary key, k integer not null)`.execute(store.db);
      await sql`create index plan_probe_k on plan_probe (k)`.execute(store.db);
      await sql`insert into plan_probe (k) select g from generate_series(1, 100) g`.execute(store.db);
      await sql`analyze plan_probe`.execute(store.db);
      // Past the fifth run the connection settles on a generic plan: a full scan of the one-page table.
      for (let i = 0; i < 8; i++) await sql`select id from plan_probe where k = ${i}`.execute(store.db);
      await sql`insert into plan_probe (k) select g from generate_series(101, 50000) g`.execute(store.db);
      const prepared = sql<{ name: string }>`select name from pg_prepared_statements where statement = ${text}`;
      const { rows } = await prepared.execute(store.db);
      assert.equal(rows.length, 1, 'the probe runs as a named statement');
      const plan = await sql.raw<{ 'QUERY PLAN': string }>(`explain execute ${rows[0].name}(7)`).execute(store.db);
      return plan.rows.map((r) => r['QUERY PLAN']).join('\n');
    } finally {
      await store.close();
    }
  };
  assert.match(await planAfterGrowth(3_600_000), /Seq Scan on plan_probe/, 'without a refresh the full scan stays');
  assert.doesNotMatch(await planAfterGrowth(0), /Seq Scan/);
});

// A rolling upgrade: a newer server adds a column while this one runs. A statement this server prepared before the
// change ("select *") cannot run its old plan any more; it is prepared again under a new name, and the request that
// met it still gets its answer (outside a transaction at once, inside one on the transaction's retry).
test('a column added by another server does not break statements prepared before it', {
  skip: testDialect() === 'sqlite' && 'PostgreSQL prepared statements',
}, async () => {
  const url = await testDb();
  const store = await openPostgresStore({ url, poolSize: 1 });
  const other = await openPostgresStore({ url, poolSize: 1 });
  try {
    await store.importPrompts([{ prompt: 'before the upgrade' }]);
    const { id } = await store.db.selectFrom('prompts').select('id').executeTakeFirstOrThrow();
    const read = () => store.db.selectFrom('prompts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const readInTx = () => store.tx((s) => s.db.selectFrom('prompts').selectAll().where('id', '=', id).execute());
    for (let i = 0; i < 3; i++) {
      await read();
      await readInTx();
    }
    await sql`alter table prompts add column upgrade_note text`.execute(other.db);
    assert.equal((await read()).text, 'before the upgrade');
    assert.equal((await readInTx())[0].text, 'before the upgrade');
    await sql`alter table prompts drop column upgrade_note`.execute(other.db);
    assert.equal((await readInTx())[0].text, 'before the upgrade');
    assert.equal((await read()).text, 'before the upgrade');
  } finally {
    await store.close();
    await other.close();
  }
});
