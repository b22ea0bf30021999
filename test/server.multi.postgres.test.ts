// Several app servers on one PostgreSQL database: any server answers any request, and what one server decides
// (a seat, a session, a failed sign-in, an idempotency key, a chat choice) holds on the others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { createServer } from '../src/server/index.js';
import { type Database, migrate, openStore, StaticMigrationProvider, type Store } from '../src/store/index.js';
import { onPostgres, testDb } from './helpers/db.js';
import { ADMIN, Client, idem, labeler } from './helpers/server.js';

async function servers(n: number, extra: Parameters<typeof createServer>[0] = {}) {
  const db = await testDb();
  const clock = { t: 1_700_000_000_000 };
  const base = { dbPath: db, now: () => clock.t, passwordCost: 1024, bootstrapAdmin: ADMIN, ...extra };
  // One after the other: the first creates the schema and the admin.
  const apps: Client['app'][] = [];
  for (let i = 0; i < n; i++) apps.push((await createServer(base)).app);
  const admin = new Client(apps[0]);
  await admin.login(ADMIN.username, ADMIN.password);
  await admin.req('PUT', '/api/admin/settings', { screeningRequired: false, overlap: 0, goldRate: 0 });
  const store = await openStore({ db });
  const close = async () => {
    for (const app of apps) await app.close();
    await store.close();
  };
  return { apps, admin, store, db, clock, close };
}

/** The same signed-in user, talking to another server. */
const on = (app: Client['app'], c: Client) => Object.assign(new Client(app), { token: c.token, csrf: c.csrf });

async function demoTasks(admin: Client, n: number): Promise<number[]> {
  const prompts = Array.from({ length: n }, (_, i) => ({ text: `prompt ${i}` }));
  const { ids } = (await admin.post('/api/admin/prompts', { prompts })).json;
  const r = await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds: ids });
  assert.equal(r.status, 201, r.body as string);
  return r.json.ids;
}

await onPostgres(async () => {
  test('two servers race for the last seat: exactly one labeler gets it', async () => {
    const { apps, admin, store, close } = await servers(2);
    try {
      for (let round = 0; round < 5; round++) {
        const [taskId] = await demoTasks(admin, 1);
        const a = await labeler(apps[0], admin, `a${round}`);
        const b = await labeler(apps[1], admin, `b${round}`);
        const [ra, rb] = await Promise.all([a.post('/api/tasks/next'), b.post('/api/tasks/next')]);
        assert.equal(ra.status, 200);
        assert.equal(rb.status, 200);
        const winners = [ra.json.assignment, rb.json.assignment].filter((x) => x !== null);
        assert.equal(winners.length, 1, `round ${round}: ${ra.body} / ${rb.body}`);
        const task = await store.db
          .selectFrom('tasks')
          .select('assigned_count')
          .where('id', '=', taskId)
          .executeTakeFirstOrThrow();
        assert.equal(task.assigned_count, 1);
        // The winner's work is done so the next round's task is the only one with room.
        const winner = ra.json.assignment ? a : b;
        const w = winners[0];
        assert.equal((await winner.post(`/api/assignments/${w.id}/submit`, { completion: 'c' }, idem())).status, 200);
      }
    } finally {
      await close();
    }
  });

  test('many labelers on two servers at once: no task gets more labelers than its target', async () => {
    const { apps, admin, store, close } = await servers(2);
    try {
      const taskIds = await demoTasks(admin, 8);
      const labs = [];
      for (let i = 0; i < 12; i++) labs.push(await labeler(apps[i % 2], admin, `lab${i}`));
      const rs = await Promise.all(labs.map((l) => l.post('/api/tasks/next')));
      assert.ok(rs.every((r) => r.status === 200));
      const given = rs.map((r) => r.json.assignment).filter((a) => a !== null);
      assert.equal(given.length, 8);
      const rows = await store.db.selectFrom('assignments').select('task_id').execute();
      assert.deepEqual(
        rows.map((r) => r.task_id).sort((x, y) => x - y),
        taskIds,
      );
      const counts = await store.db.selectFrom('tasks').select('assigned_count').execute();
      assert.ok(counts.every((c) => c.assigned_count === 1));
    } finally {
      await close();
    }
  });

  test('one labeler asking for work on two servers at once gets one assignment, from both', async () => {
    const { apps, admin, store, close } = await servers(2);
    try {
      await demoTasks(admin, 10);
      for (let round = 0; round < 5; round++) {
        const a = await labeler(apps[0], admin, `twice${round}`);
        const rs = await Promise.all([a, on(apps[1], a), a, on(apps[1], a)].map((c) => c.post('/api/tasks/next')));
        const ids = new Set(rs.map((r) => r.json.assignment?.id));
        assert.equal(ids.size, 1, `round ${round}: ${rs.map((r) => r.body).join(' / ')}`);
        const open = await store.db
          .selectFrom('assignments')
          .innerJoin('users', 'users.id', 'assignments.user_id')
          .where('users.username', '=', `twice${round}`)
          .select('assignments.id')
          .execute();
        assert.deepEqual(
          open.map((r) => r.id),
          [...ids],
        );
      }
    } finally {
      await close();
    }
  });

  test('a session made on one server works on the other; signing out on one ends it on both', async () => {
    const { apps, admin, close } = await servers(2);
    try {
      const onB = on(apps[1], admin);
      const me = await onB.get('/api/me');
      assert.equal(me.status, 200);
      assert.equal(me.json.user.username, ADMIN.username);
      assert.equal((await onB.req('PUT', '/api/admin/settings', { k: 5 })).status, 200);
      assert.equal((await admin.get('/api/admin/settings')).json.settings.k, 5);
      // Labeler routes reuse the settings a server read until another server changes them: the change shows at once.
      assert.notEqual((await admin.get('/api/guidelines')).json.guidelines, 'new rules');
      await onB.req('PUT', '/api/admin/settings', { guidelines: 'new rules' });
      assert.equal((await admin.get('/api/guidelines')).json.guidelines, 'new rules');
      assert.equal((await onB.post('/api/auth/logout')).status, 200);
      assert.equal((await admin.get('/api/me')).status, 401);
    } finally {
      await close();
    }
  });

  test('failed sign-ins count on every server', async () => {
    const { apps, close } = await servers(2, { loginThrottle: { maxFailures: 3, windowMs: 60_000 } });
    try {
      const attempt = (i: number, password: string) =>
        apps[i].inject({
          method: 'POST',
          url: '/api/auth/login',
          payload: { username: ADMIN.username, password },
          remoteAddress: '10.0.0.9',
        });
      for (const i of [0, 1, 0]) assert.equal((await attempt(i, 'wrong-password')).statusCode, 401);
      const locked = await attempt(1, ADMIN.password);
      assert.equal(locked.statusCode, 429);
      assert.ok(Number(locked.headers['retry-after']) > 0);
      assert.equal((await attempt(0, ADMIN.password)).statusCode, 429);
    } finally {
      await close();
    }
  });

  test('a submission retried on another server with its Idempotency-Key is stored once', async () => {
    const { apps, admin, store, close } = await servers(2);
    try {
      await demoTasks(admin, 1);
      const lab = await labeler(apps[0], admin, 'lab');
      const labB = on(apps[1], lab);
      const a = (await lab.post('/api/tasks/next')).json.assignment;
      const url = `/api/assignments/${a.id}/submit`;
      const key = idem();
      // At the same time on both servers, then once more on the second.
      const [r1, r2] = await Promise.all([
        lab.post(url, { completion: 'c' }, key),
        labB.post(url, { completion: 'c' }, key),
      ]);
      const r3 = await labB.post(url, { completion: 'c' }, key);
      for (const r of [r1, r2, r3]) assert.equal(r.status, 200, r.body as string);
      assert.equal(new Set([r1, r2, r3].map((r) => r.json.storedId)).size, 1);
      assert.equal((await store.db.selectFrom('demonstrations').selectAll().execute()).length, 1);
    } finally {
      await close();
    }
  });

  test('a chat comparison chosen on two servers at once is stored once', async () => {
    const { apps, admin, store, close } = await servers(2);
    try {
      await admin.req('PUT', '/api/admin/settings', { chatCompareEvery: 1 });
      const chat = await admin.post('/api/chat', { content: 'hello' });
      const events = String(chat.body)
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string; pairId?: number });
      const pairId = events.find((e) => e.type === 'compare')?.pairId;
      const onB = on(apps[1], admin);
      const rs = await Promise.all([
        admin.post('/api/chat/compare', { pairId, choice: 'a' }, idem()),
        onB.post('/api/chat/compare', { pairId, choice: 'b' }, idem()),
      ]);
      assert.deepEqual(rs.map((r) => r.status).sort(), [200, 409]);
      const replies = await store.db
        .selectFrom('chat_messages')
        .select('role')
        .where('role', '=', 'assistant')
        .execute();
      assert.equal(replies.length, 1);
    } finally {
      await close();
    }
  });

  test('a connection lost mid-submission is a 503 with Retry-After and nothing half-written', async () => {
    const { apps, admin, store, db, close } = await servers(1);
    const side = new pg.Client({ connectionString: db });
    await side.connect();
    try {
      await demoTasks(admin, 1);
      const lab = await labeler(apps[0], admin, 'lab');
      const a = (await lab.post('/api/tasks/next')).json.assignment;
      const { prompt_id } = await store.db
        .selectFrom('assignments')
        .innerJoin('tasks', 'tasks.id', 'assignments.task_id')
        .select('tasks.prompt_id')
        .where('assignments.id', '=', a.id)
        .executeTakeFirstOrThrow();
      // Holding the prompt's row makes the submission wait after marking its assignment done, at the insert of the
      // demonstration (its foreign key); its connection is then cut.
      await side.query('begin');
      await side.query('select id from prompts where id = $1 for update', [prompt_id]);
      const key = idem();
      const pending = lab.post(`/api/assignments/${a.id}/submit`, { completion: 'c' }, key);
      let pid: number | undefined;
      for (let waited = 0; pid === undefined && waited < 5000; waited += 20) {
        await new Promise((r) => setTimeout(r, 20));
        // Activity is read once per transaction unless the snapshot is cleared.
        await side.query('select pg_stat_clear_snapshot()');
        const r = await side.query(
          "select pid from pg_stat_activity where wait_event_type = 'Lock' and query like '%demonstrations%'",
        );
        pid = r.rows[0]?.pid;
      }
      assert.ok(pid, 'the submission never waited on the lock');
      await side.query('select pg_terminate_backend($1)', [pid]);
      const r = await pending;
      assert.equal(r.status, 503, r.body as string);
      assert.equal(r.headers['retry-after'], '1');
      await side.query('rollback');
      assert.equal((await store.db.selectFrom('demonstrations').selectAll().execute()).length, 0);
      const row = await store.db.selectFrom('assignments').select('status').where('id', '=', a.id).executeTakeFirst();
      assert.equal(row?.status, 'open');
      // The retry with the same key (the server has a new connection by now) stores it once.
      const retry = await lab.post(`/api/assignments/${a.id}/submit`, { completion: 'c' }, key);
      assert.equal(retry.status, 200, retry.body as string);
      assert.equal((await store.db.selectFrom('demonstrations').selectAll().execute()).length, 1);
    } finally {
      await side.end();
      await close();
    }
  });

  test('a failing migration rolls back: none of the pending migrations is applied', async () => {
    const db = await testDb();
    const pool = new pg.Pool({ connectionString: db, max: 2 });
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    try {
      const real = await new StaticMigrationProvider('postgres').getMigrations();
      const broken = {
        getMigrations: async () => ({
          ...real,
          '9999_broken': {
            async up(d: Kysely<unknown>) {
              await d.schema.createTable('half_done').addColumn('id', 'integer').execute();
              throw new Error('this migration fails');
            },
          },
        }),
      };
      await assert.rejects(migrate(kysely, 'postgres', broken), /this migration fails/);
      const tables = await sql<{ n: number }>`select count(*)::int as n from information_schema.tables
        where table_schema = current_schema() and table_name not like 'kysely_%'`.execute(kysely);
      assert.equal(tables.rows[0].n, 0, 'no table of any pending migration is left');
      const applied = await sql<{ n: number }>`select count(*)::int as n from kysely_migration`.execute(kysely);
      assert.equal(applied.rows[0].n, 0);
      // The real migrations then apply cleanly.
      assert.deepEqual(await migrate(kysely, 'postgres'), Object.keys(real));
    } finally {
      await kysely.destroy();
    }
  });

  test('every server may start at once on a new database: migrations run once', async () => {
    const db = await testDb();
    const stores: Store[] = await Promise.all([openStore({ db }), openStore({ db }), openStore({ db })]);
    const n = await sql<{ n: number }>`select count(*)::int as n from kysely_migration`.execute(stores[0].db);
    assert.equal(n.rows[0].n, Object.keys(await new StaticMigrationProvider('postgres').getMigrations()).length);
    for (const s of stores) await s.close();
  });

  test('screening attempts raced on two servers: never more than the limit are kept', async () => {
    const { apps, admin, store, close } = await servers(2);
    try {
      await admin.req('PUT', '/api/admin/settings', { screeningRequired: true, screeningMaxAttempts: 2 });
      const [goldId] = (await admin.post('/api/admin/gold', { prompt: 'g', responses: ['a', 'b'], ranking: [0, 1] }))
        .json.ids;
      await admin.req('PUT', '/api/admin/screening', { goldIds: [goldId], passThreshold: 1 });
      for (let round = 0; round < 3; round++) {
        const lab = await labeler(apps[0], admin, `s${round}`, 'training', false);
        const wrong = { answers: [{ goldId, ranking: [1, 0] }] };
        const attempts = [0, 1, 2, 3, 4, 5].map((i) =>
          on(apps[i % 2], lab).post('/api/screening/submit', wrong, idem()),
        );
        const statuses = (await Promise.all(attempts)).map((r) => r.status).sort();
        assert.deepEqual(statuses, [200, 200, 403, 403, 403, 403], `round ${round}`);
        const kept = await store.db
          .selectFrom('screening_results')
          .select('id')
          .where('user_id', '=', lab.id)
          .execute();
        assert.equal(kept.length, 2);
      }
    } finally {
      await close();
    }
  });

  test('labelers on two servers meeting one live gold item at once share one hidden task', async () => {
    const { apps, admin, store, close } = await servers(2);
    try {
      const candidates = Array.from({ length: 10 }, (_, i) =>
        JSON.stringify({ prompt: `q${i}`, responses: ['w', 'x', 'y', 'z'] }),
      ).join('\n');
      await admin.req('POST', '/api/admin/import/candidates', candidates, {
        headers: { 'content-type': 'application/x-ndjson' },
      });
      const ids = (await admin.get('/api/admin/prompts?limit=100')).json.prompts.map((p: { id: number }) => p.id);
      assert.equal((await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: ids })).status, 201);
      await admin.post('/api/admin/gold', { prompt: 'live gold', responses: ['a', 'b', 'c'], ranking: [0, 1, 2] });
      await admin.req('PUT', '/api/admin/settings', { goldRate: 1 });
      const labs = [];
      for (let i = 0; i < 6; i++) labs.push(await labeler(apps[i % 2], admin, `g${i}`));
      const rs = await Promise.all(labs.map((l) => l.post('/api/tasks/next')));
      assert.deepEqual(
        rs.map((r) => r.status),
        [200, 200, 200, 200, 200, 200],
        rs.map((r) => r.body).join(' / '),
      );
      assert.ok(rs.every((r) => r.json.assignment?.prompt === 'live gold'));
      const hidden = await store.db.selectFrom('tasks').select('id').where('gold_id', 'is not', null).execute();
      assert.equal(hidden.length, 1);
    } finally {
      await close();
    }
  });
});
