import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql } from 'kysely';
import {
  copyStore,
  ImportedCandidates,
  migratorFor,
  openSqliteStore,
  openStore,
  orderedPairs,
  pairwiseAgreement,
  parseJsonl,
  rankingLabelError,
  StaticMigrationProvider,
  tableDigest,
  toJsonl,
} from '../src/store/index.js';
import { prepared } from '../src/store/prepared.js';
import { testDb, testDialect } from './helpers/db.js';

const opts = { maxTextChars: 1000 };
// What only a SQLite file has (WAL, its checkpointer, a database of the first release built by hand).
const sqliteFile = { skip: testDialect() !== 'sqlite' && 'SQLite file database' };

test('store: file database uses WAL and migrations are versioned and idempotent', sqliteFile, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-store-'));
  try {
    const path = join(dir, 'db.sqlite');
    const s1 = await openSqliteStore({ path });
    await s1.prompts.add([{ text: 'hello' }], 'test');
    await s1.close();
    const s2 = await openSqliteStore({ path });
    const { total } = await s2.prompts.list({ limit: 10, offset: 0 });
    assert.equal(total, 1);
    const applied = (await s2.db
      .selectFrom('kysely_migration' as never)
      .select('name' as never)
      .orderBy('name' as never)
      .execute()) as { name: string }[];
    assert.deepEqual(
      applied.map((m) => m.name),
      Object.keys(await new StaticMigrationProvider('sqlite').getMigrations()).sort(),
    );
    await s2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A server and its training worker are two processes on one SQLite file. A transaction that read first and wrote
// second, while the other process was writing, used to fail at once with SQLITE_BUSY (SQLite does not wait there).
test(
  'store: a SQLite transaction holds the write lock from its start, so another writer cannot fail it',
  sqliteFile,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ik-store-'));
    const store = await openSqliteStore({ path: join(dir, 'db.sqlite') });
    const other = new SqliteDatabase(join(dir, 'db.sqlite'));
    other.pragma('busy_timeout = 0');
    try {
      let otherWrote = true;
      await store.tx(async (s) => {
        const before = await s.db.selectFrom('groups').select('name').execute();
        try {
          other.prepare("insert into groups (name, split) values ('other', 'training')").run();
        } catch (e) {
          assert.equal((e as { code?: string }).code, 'SQLITE_BUSY');
          otherWrote = false;
        }
        await s.db
          .insertInto('groups')
          .values({ name: `after ${before.length}`, split: 'training' })
          .execute();
      });
      assert.equal(otherWrote, false, 'the other connection had to wait for the transaction');
      other.prepare("insert into groups (name, split) values ('other', 'training')").run();
    } finally {
      other.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('store: the task capacity migration counts existing assignments; full tasks are skipped', sqliteFile, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-store-'));
  try {
    const path = join(dir, 'db.sqlite');
    // A database as the first release left it: two tasks, the first one full (target 1, one assignment).
    // biome-ignore lint/suspicious/noExplicitAny: the schema of the first release
    const old = new Kysely<any>({ dialect: new SqliteDialect({ database: new SqliteDatabase(path) }) });
    const migrator = new Migrator({ db: old, provider: new StaticMigrationProvider('sqlite') });
    assert.equal((await migrator.migrateTo('0001_initial')).error, undefined);
    await old
      .insertInto('users')
      .values([
        { username: 'a', password_hash: 'x', role: 'labeler', group_id: 1, created_at: 1 },
        { username: 'b', password_hash: 'x', role: 'labeler', group_id: 1, created_at: 1 },
      ])
      .execute();
    await old.insertInto('prompts').values({ text: 'p', split: 'training', source: 't', created_at: 1 }).execute();
    const task = { kind: 'demonstration', prompt_id: 1, split: 'training', target: 1, created_at: 1 };
    await old.insertInto('tasks').values([task, task]).execute();
    await old.insertInto('assignments').values({ task_id: 1, user_id: 1, status: 'done', created_at: 1 }).execute();
    await old.destroy();

    const store = await openSqliteStore({ path });
    const counts = await store.db.selectFrom('tasks').select(['id', 'assigned_count']).orderBy('id').execute();
    assert.deepEqual(counts, [
      { id: 1, assigned_count: 1 },
      { id: 2, assigned_count: 0 },
    ]);
    const b = (await store.users.get(2))!;
    const given = await store.tasks.next(b);
    assert.equal(
      (await store.db.selectFrom('assignments').select('task_id').where('id', '=', given!.id).executeTakeFirst())
        ?.task_id,
      2,
    );
    assert.equal(await store.tasks.next((await store.users.get(1))!), null, 'both tasks are now full');
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'store: the curation migration folds duplicate hidden gold tasks into one, keeping every answer',
  sqliteFile,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ik-store-'));
    try {
      const path = join(dir, 'db.sqlite');
      // Two servers once made two hidden tasks for one gold item, each with a labeler's answer.
      // biome-ignore lint/suspicious/noExplicitAny: the schema before 0009
      const old = new Kysely<any>({ dialect: new SqliteDialect({ database: new SqliteDatabase(path) }) });
      const migrator = new Migrator({ db: old, provider: new StaticMigrationProvider('sqlite') });
      assert.equal((await migrator.migrateTo('0007_jobs_models')).error, undefined);
      const user = (username: string) => ({
        username,
        password_hash: 'x',
        role: 'labeler',
        group_id: 1,
        created_at: 1,
      });
      await old
        .insertInto('users')
        .values([user('a'), user('b')])
        .execute();
      await old.insertInto('prompts').values({ text: 'g', split: 'training', source: 'gold', created_at: 1 }).execute();
      await old
        .insertInto('gold_items')
        .values({ prompt: 'g', responses: '["x","y"]', ranking: '[0,1]', created_at: 1 })
        .execute();
      const task = { kind: 'ranking', prompt_id: 1, split: 'training', target: 0, gold_id: 1, created_at: 1 };
      await old.insertInto('tasks').values([task, task]).execute();
      await old
        .insertInto('assignments')
        .values([
          { task_id: 1, user_id: 1, status: 'done', created_at: 1 },
          { task_id: 2, user_id: 2, status: 'done', created_at: 1 },
        ])
        .execute();
      const answer = (id: number) => ({
        gold_id: 1,
        user_id: id,
        assignment_id: id,
        ranking: '[0,1]',
        agreement: 1,
        created_at: 1,
      });
      await old
        .insertInto('gold_answers')
        .values([answer(1), answer(2)])
        .execute();
      await old.destroy();

      const store = await openSqliteStore({ path });
      assert.deepEqual(await store.db.selectFrom('tasks').select('id').where('gold_id', '=', 1).execute(), [{ id: 1 }]);
      const assigned = await store.db.selectFrom('assignments').select('task_id').orderBy('id').execute();
      assert.deepEqual(assigned, [{ task_id: 1 }, { task_id: 1 }]);
      assert.equal((await store.db.selectFrom('gold_answers').select('id').execute()).length, 2);
      // From now on a second hidden task for the item cannot be made.
      await assert.rejects(
        store.db
          .insertInto('tasks')
          .values(task as never)
          .execute(),
        /UNIQUE/,
      );
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('store: every migration goes down and up again', async () => {
  const store = await openStore({ db: await testDb() });
  const migrator = await migratorFor(store.db, store.dialect);
  const names = Object.keys(await new StaticMigrationProvider(store.dialect).getMigrations());
  for (const name of [...names].reverse()) {
    const down = await migrator.migrateDown();
    assert.equal(down.error, undefined, name);
    assert.deepEqual(
      down.results?.map((r) => r.migrationName),
      [name],
    );
  }
  // PostgreSQL lists the tables of every schema: only this store's own (its search_path) count.
  const own =
    store.dialect === 'postgres'
      ? (await sql<{ s: string }>`select current_schema() as s`.execute(store.db)).rows[0].s
      : undefined;
  const tables = await store.db.introspection.getTables();
  assert.deepEqual(
    tables.filter((t) => t.schema === own),
    [],
  );
  assert.equal((await migrator.migrateToLatest()).error, undefined);
  await store.close();
});

test('store: a file database is checkpointed in the background, not on commit', sqliteFile, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-store-'));
  try {
    const path = join(dir, 'db.sqlite');
    const store = await openSqliteStore({ path });
    const before = statSync(path).size;
    // About 2 MB of table and text index (short texts: no overflow pages), half the 1000-page log that would
    // trigger a checkpoint on commit.
    await store.prompts.add(
      Array.from({ length: 3000 }, (_, j) => ({ text: `${j} ${'x'.repeat(300)}` })),
      't',
    );
    let size = statSync(path).size;
    for (let waited = 0; size < before + 1_500_000 && waited < 10_000; waited += 50) {
      await new Promise((r) => setTimeout(r, 50));
      size = statSync(path).size;
    }
    assert.ok(size >= before + 1_500_000, `database file ${size} bytes: the log was not copied back`);
    await store.close();
    const reopened = await openSqliteStore({ path });
    assert.equal((await reopened.prompts.list({ limit: 1, offset: 0 })).total, 3000);
    await reopened.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('jsonl: errors carry file:line and bad rankings are refused', () => {
  const src = [
    '{"prompt":"p","responses":["a","b","c","d"],"ranking":[3,2,1,0],"likert":[1,2,3,7],"flags":{"hallucination":[1]}}',
    '',
    '{"prompt":"p","responses":["a","b","c","d"],"ranking":[0,0,1,2]}',
    'not json',
    '{"prompt":"p","responses":["a","b","c","d"],"ranking":[0,1,2,3],"likert":[0,1,1,1]}',
    '{"prompt":"p","responses":["a","b","c","d"],"ranking":[0,1,2,3],"flags":{"rude":[0]}}',
    `{"prompt":"${'x'.repeat(1001)}","responses":["a","b","c","d"],"ranking":[0,1,2,3]}`,
  ].join('\n');
  const { records, errors } = parseJsonl('rankings', src, opts, 'r.jsonl');
  assert.equal(records.length, 1);
  assert.deepEqual(
    errors.map((e) => e.line),
    [3, 4, 5, 6, 7],
  );
  assert.equal(errors[0].file, 'r.jsonl');
  assert.match(errors[0].message, /must be a permutation of 0\.\.3/);
  assert.match(errors[4].message, /longer than 1000/);
});

test('agreement measures', () => {
  assert.equal(pairwiseAgreement([0, 1, 2, 3], [0, 1, 2, 3]), 1);
  assert.equal(pairwiseAgreement([0, 1, 2, 3], [3, 2, 1, 0]), 0);
  assert.equal(pairwiseAgreement([0, 1, 2], [1, 0, 2]), 2 / 3);
  assert.equal(rankingLabelError({ ranking: [1, 0] }, 2), null);
  assert.match(rankingLabelError({ ranking: [2, 0, 0] }, 3)!, /must be a permutation of 0\.\.2/);
});

test('rankings with ties: pairs only across places, agreement counts a tie as its own order', () => {
  assert.equal(rankingLabelError({ ranking: [2, [0, 3], 1] }, 4), null);
  assert.match(rankingLabelError({ ranking: [[2], 0, 1] }, 3)!, /a tie groups 2 or more/);
  assert.match(rankingLabelError({ ranking: [[0, 1], 1] }, 2)!, /permutation/);
  assert.deepEqual(orderedPairs([2, [0, 3], 1]), [
    [2, 0],
    [2, 3],
    [2, 1],
    [0, 1],
    [3, 1],
  ]);
  assert.deepEqual(orderedPairs([[0, 1, 2]]), []);
  // A strict ranking gives the paper's C(K,2) pairs in the order the trainers always read them.
  assert.deepEqual(orderedPairs([1, 0, 2]), [
    [1, 0],
    [1, 2],
    [0, 2],
  ]);
  assert.equal(pairwiseAgreement([[0, 1], 2], [[0, 1], 2]), 1);
  assert.equal(pairwiseAgreement([0, 1, 2], [[0, 1], 2]), 2 / 3);
  // An all-tie ranking cannot be imported or read by a trainer: it makes no pair.
  const { errors } = parseJsonl('rankings', '{"prompt":"p","responses":["a","b"],"ranking":[[0,1]]}', opts, 'r.jsonl');
  assert.match(errors[0].message, /one tie/);
  const ok = parseJsonl('rankings', '{"prompt":"p","responses":["a","b","c"],"ranking":[[0,2],1]}', opts, 'r.jsonl');
  assert.deepEqual(ok.records[0].ranking, [[0, 2], 1]);
});

test('store: imported candidates feed a CandidateSource; export/import round trips', async () => {
  const s = await openStore({ db: await testDb() });
  const cands = parseJsonl('candidates', '{"prompt":"q","responses":["r1","r2","r3","r4","r5"]}\n', opts);
  await s.importCandidates(cands.records);
  const src = new ImportedCandidates(s);
  assert.deepEqual(await src.generate('q', 4), ['r1', 'r2', 'r3', 'r4']);
  // A pool smaller than K gives what it has: the task's K shrinks (distinctCandidates decides).
  assert.deepEqual(await src.generate('q', 6), ['r1', 'r2', 'r3', 'r4', 'r5']);
  await assert.rejects(src.generate('other', 4));

  const demos = toJsonl([
    { prompt: 'a <b>', completion: 'c' },
    { prompt: 'ü', completion: '<script>x</script>' },
  ]);
  await s.importDemonstrations(parseJsonl('demonstrations', demos, opts).records);
  assert.equal(toJsonl(await s.exportDemonstrations('training')), demos);

  const ranks = toJsonl([
    {
      prompt: 'p',
      responses: ['a', 'b', 'c', 'd'],
      ranking: [2, 0, 3, 1],
      labeler: 'x',
      likert: [3, 1, 7, 2],
      flags: { hallucination: [1] },
    },
    { prompt: 'p2', responses: ['a', 'b', 'c', 'd'], ranking: [0, 1, 2, 3] },
  ]);
  await s.importRankings(parseJsonl('rankings', ranks, opts).records);
  assert.equal(toJsonl(await s.exportRankings('training')), ranks);

  const pw = toJsonl([{ prompt: 'p', chosen: 'good', rejected: 'bad' }]);
  await s.importPairwise(parseJsonl('pairwise', pw, opts).records);
  assert.equal(toJsonl(await s.exportPairwise('training', { rankings: false, comparisons: true })), pw);
  const all = await s.exportPairwise('training', { rankings: true, comparisons: true });
  assert.equal(all.length, 6 + 6 + 1);
  assert.deepEqual(all[0], { prompt: 'p', chosen: 'c', rejected: 'a' });

  const ev = toJsonl([
    { prompt: 'p', model_a: 'sft', model_b: 'ppo', response_a: 'x', response_b: 'y', winner: 'b', labeler: 'z' },
  ]);
  await s.importEval(parseJsonl('eval', ev, opts).records);
  assert.equal(toJsonl(await s.exportEval('training')), ev);
  await s.close();
});

test('store: overdue assignments of several labelers and tasks are released at once, the others kept', async () => {
  let clock = 1_000;
  const store = await openStore({ db: await testDb(), now: () => clock });
  const group = await store.users.createGroup('g', 'training');
  const labelers = [];
  for (const name of ['a', 'b', 'c'])
    labelers.push(
      (await store.users.get(
        (
          await store.users.create({ username: name, passwordHash: 'x', role: 'labeler', group: group.name })
        ).id,
      ))!,
    );
  const [p1, p2] = await store.prompts.add([{ text: 'one' }, { text: 'two' }], 'test');
  // Three labelers take the first task; the second keeps its count of zero throughout.
  await store.tasks.create({ kind: 'demonstration', promptId: p1, setId: null, target: 3 });
  await store.tasks.create({ kind: 'demonstration', promptId: p2, setId: null, target: 3 });
  const [a, b, c] = labelers;
  await store.tasks.next(a, { timeoutMs: 100 }); // t1, due at 1100
  await store.tasks.next(b, { timeoutMs: 100 }); // t1, due at 1100
  clock = 1_050;
  await store.tasks.next(c, { timeoutMs: 500 }); // t1, due at 1550
  const counts = async () =>
    (await store.db.selectFrom('tasks').select(['id', 'assigned_count']).orderBy('id').execute()).map(
      (r) => r.assigned_count,
    );
  assert.deepEqual(await counts(), [3, 0]);
  clock = 1_100;
  assert.equal(await store.tasks.releaseOverdue(), 2);
  assert.deepEqual(await counts(), [1, 0]);
  const expired = await store.db.selectFrom('assignments').select(['user_id', 'expired_at']).orderBy('id').execute();
  assert.deepEqual(
    expired.map((r) => r.expired_at),
    [1_100, 1_100, null],
  );
  assert.equal(await store.tasks.releaseOverdue(), 0, 'nothing is released twice');
  assert.deepEqual(await counts(), [1, 0]);
  await store.close();
});

test("migration 0011 numbers each labeler's earlier assignments in order; new ones go on from there", async () => {
  const store = await openStore({ db: await testDb() });
  const migrator = await migratorFor(store.db, store.dialect);
  const group = await store.users.createGroup('g', 'training');
  const lab = async (name: string) =>
    (await store.users.get(
      (
        await store.users.create({ username: name, passwordHash: 'x', role: 'labeler', group: group.name })
      ).id,
    ))!;
  const [a, b] = [await lab('a'), await lab('b')];
  const prompts = await store.prompts.add(
    ['p1', 'p2', 'p3', 'p4'].map((text) => ({ text })),
    'test',
  );
  for (const promptId of prompts) await store.tasks.create({ kind: 'demonstration', promptId, setId: null, target: 2 });
  // Before 0011: a has tasks 1 and 3, b has 2 (ids interleaved between labelers).
  assert.deepEqual((await migrator.migrateTo('0010_versions')).error, undefined);
  const old = (task_id: number, user_id: number) => ({ task_id, user_id, status: 'done', created_at: 1 });
  await store.db
    .insertInto('assignments')
    .values([old(1, a.id), old(2, b.id), old(3, a.id)] as never)
    .execute();
  assert.equal((await migrator.migrateToLatest()).error, undefined);
  const numbers = await store.db.selectFrom('assignments').select(['user_id', 'number']).orderBy('id').execute();
  assert.deepEqual(
    numbers.map((r) => [r.user_id, r.number]),
    [
      [a.id, 1],
      [b.id, 1],
      [a.id, 2],
    ],
  );
  await store.db.updateTable('tasks').set({ assigned_count: 1 }).where('id', '<=', 3).execute();
  assert.equal((await store.tasks.next(a))?.number, 3);
  assert.equal((await store.tasks.next(b))?.number, 2);
  await store.close();
});

test('store: an unreachable PostgreSQL at start-up is a clear error naming the host, never the password', async () => {
  const err = await openStore({ db: 'postgres://labels:s3cret@127.0.0.1:1/labels' }).then(
    () => assert.fail('opened'),
    (e: Error) => e,
  );
  assert.match(err.message, /^cannot reach PostgreSQL at 127\.0\.0\.1:1 \(database labels\): ECONNREFUSED/);
  assert.ok(!err.message.includes('s3cret'));
  await assert.rejects(
    openStore({ db: 'postgres://labels:s3cret@[::1/labels' }),
    (e: Error) =>
      /^not a valid PostgreSQL URL: write it as postgres:\/\//.test(e.message) && !e.message.includes('s3cret'),
  );
});

test('db copy: SQLite → this dialect → SQLite keeps every row and id; a non-empty target is refused untouched', async () => {
  let clock = 5_000;
  const now = () => clock;
  const src = await openStore({ db: ':memory:', now });
  // A little of everything: users and sessions, prompts and tasks, submissions, rankings, chat, gold, settings.
  const lab = await src.users.create({ username: 'lab', passwordHash: 'h', role: 'labeler' });
  await src.users.create({ username: 'boss', passwordHash: 'h', role: 'admin' });
  await src.users.createGroup('team-b', 'heldout');
  await src.sessions.create({ id: 'sess', userId: lab.id, csrfToken: 'c', expiresAt: 9_000_000_000_000 });
  const [p1] = await src.prompts.add([{ text: 'Say hi ü <b>' }, { text: 'held', split: 'heldout' }], 'admin');
  await src.tasks.create({ kind: 'demonstration', promptId: p1, setId: null, target: 1 });
  const a = (await src.tasks.next(lab, { timeoutMs: 60_000 }))!;
  await src.idempotency.run(lab.id, 'k1', 'r', 'h', async (s) => ({
    status: 200,
    body: await s.submissions.demonstration(a.id, lab.id, 'hi there'),
  }));
  await src.importRankings([
    { prompt: 'r', responses: ['a', 'b', 'c', 'd'], ranking: [3, 1, 0, 2], likert: [1, 2, 3, 4] },
  ]);
  const conv = await src.chat.createConversation(lab.id, 'talk');
  await src.chat.addMessage(conv, 'user', 'hello');
  await src.chat.openPair(lab.id, conv, { prompt: 'hello', a: 'x', b: 'y', modelA: 'm', modelB: 'm' });
  await src.gold.add([{ prompt: 'g', responses: ['1', '2', '3', '4'], ranking: [0, 1, 2, 3] }]);
  await src.gold.submitScreening(lab.id, [], { threshold: 0, maxAttempts: 0 }).catch(() => {}); // no test set up: stores nothing
  await src.settings.update({ k: 7, overlap: 0.25 });
  await src.loginFailures.record(['lab', ''], '10.0.0.1', clock, 0);
  clock += 1;

  const mid = await openStore({ db: await testDb(), now });
  const there = await copyStore(src, mid);
  assert.ok(there.find((t) => t.table === 'demonstrations')?.rows === 1);
  const back = await openStore({ db: ':memory:', now });
  const again = await copyStore(mid, back);
  assert.deepEqual(again, there, 'the same rows and hashes after the round trip');
  for (const t of there) assert.deepEqual(await tableDigest(back, t.table as never), t);
  // The target keeps handing out new ids after the copied ones.
  const [next] = await mid.prompts.add([{ text: 'new' }], 'admin');
  assert.equal(next, 4);
  // A second copy into a database that now has rows is refused, and changes nothing there.
  const before = await tableDigest(mid, 'prompts');
  await assert.rejects(copyStore(src, mid), /target database is not empty: .*users \(2 rows\)/);
  assert.deepEqual(await tableDigest(mid, 'prompts'), before);
  for (const s of [src, mid, back]) await s.close();
});

test('store: a prepared query is compiled once and runs with each call’s values, in and out of a transaction', async () => {
  const sent: [string, readonly unknown[]][] = [];
  const store = await openStore({ db: await testDb(), onQuery: (text, params) => sent.push([text, params]) });
  await store.prompts.add([{ text: 'first' }, { text: 'second' }, { text: 'third' }], 'test');
  let builds = 0;
  const byText = prepared((db, v: { text: string; min: number }) => {
    builds++;
    return db.selectFrom('prompts').select(['id', 'text']).where('text', '=', v.text).where('id', '>=', v.min);
  });
  sent.length = 0;
  assert.equal((await byText(store, { text: 'second', min: 1 }))?.text, 'second');
  assert.equal(await byText(store, { text: 'first', min: 2 }), undefined);
  assert.equal((await store.tx((s) => byText(s, { text: 'third', min: 0 })))?.text, 'third');
  assert.equal(builds, 1);
  const selects = sent.filter(([text]) => /^select/i.test(text));
  assert.equal(selects.length, 3);
  assert.ok(selects.every(([text]) => text === selects[0][0]));
  assert.deepEqual(
    selects.map(([, params]) => params),
    [
      ['second', 1],
      ['first', 2],
      ['third', 0],
    ],
  );
  // Mistakes are refused at the first call, before anything is sent: a value the query never places (the caller
  // forgot `limit`), and arithmetic on a stand-in, which would bake one constant into every later call.
  sent.length = 0;
  const forgets = prepared((db, v: { text: string; limit: number }) =>
    db.selectFrom('prompts').select('id').where('text', '=', v.text),
  );
  await assert.rejects(forgets(store, { text: 'first', limit: 1 }), /limit never placed/);
  const computes = prepared((db, v: { min: number }) =>
    db
      .selectFrom('prompts')
      .select('id')
      .where('id', '>=', (v.min as number) + 1),
  );
  await assert.rejects(computes(store, { min: 1 }), /"min" is a stand-in/);
  assert.deepEqual(sent, []);
  await store.close();
});
