/** The admin's view of the work (review defect 7): honest rates, a task list to find things in, splits kept apart. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { sql } from 'kysely';
import { responses } from '../src/server/responses.js';
import { testDialect } from './helpers/db.js';
import { type Client, idem, labeler, setup } from './helpers/server.js';

async function prompts(admin: Client, texts: string[], split = 'training'): Promise<number[]> {
  return (await admin.post('/api/admin/prompts', { prompts: texts.map((text) => ({ text, split })) })).json.ids;
}

test('per-hour throughput counts working time: two quick tasks are not 360000/h, breaks do not count', async () => {
  const month = 30 * 24 * 3600_000;
  const { app, admin, clock } = await setup({ sessionTtlMs: month, sessionMaxAgeMs: month });
  const lab = await labeler(app, admin, 'lab1');
  await admin.post('/api/admin/tasks', {
    kind: 'demonstration',
    promptIds: await prompts(admin, ['a', 'b', 'c', 'd', 'e']),
  });
  const work = async (afterMs: number) => {
    const a = (await lab.post('/api/tasks/next')).json.assignment;
    clock.t += afterMs;
    assert.equal((await lab.post(`/api/assignments/${a.id}/submit`, { completion: 'x' }, idem())).status, 200);
  };
  await work(0);
  await work(10); // 10 ms later
  const rate = () =>
    (admin.get('/api/admin/dashboard') as Promise<{ json: { labelers: { perHour: number | null }[] } }>).then(
      (r) => r.json.labelers[0].perHour,
    );
  const quick = await rate();
  assert.ok(quick !== null && quick <= 2, `two tasks 10 ms apart: ${quick} per hour`);
  // Three more, 20 minutes apart, after a three-day break: 3 tasks in one working hour, 5 over the two sessions.
  clock.t += 3 * 24 * 3600_000;
  for (const _ of [1, 2, 3]) await work(20 * 60_000);
  const r = await rate();
  assert.ok(r !== null && r > 3 && r <= 5, `${r} per hour`);
  await app.close();
});

test('task list: paging, search in the prompt, filters by kind and state, and the total that matches', async () => {
  const { app, admin } = await setup();
  const lab = await labeler(app, admin, 'lab1');
  await admin.req('PUT', '/api/admin/settings', { overlap: 0 });
  const texts = Array.from({ length: 120 }, (_, i) => `${i % 2 ? 'Cats' : 'dogs'} question ${i}`);
  const ids = await prompts(admin, texts);
  await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds: ids.slice(0, 100) });
  const page = async (q: string) => (await admin.get(`/api/admin/tasks?${q}`)).json;
  const p1 = await page('limit=50&offset=0');
  const p3 = await page('limit=50&offset=100');
  assert.equal(p1.total, 100);
  assert.equal(p1.tasks.length, 50);
  assert.equal(p3.tasks.length, 0);
  assert.equal((await page('limit=50&offset=50')).tasks[0].prompt, 'dogs question 50');
  // Search ignores case and takes % and _ literally.
  const cats = await page('limit=10&offset=0&q=cATS');
  assert.equal(cats.total, 50);
  assert.ok(cats.tasks.every((t: { prompt: string }) => t.prompt.startsWith('Cats')));
  assert.equal((await page('limit=10&offset=0&q=%25')).total, 0);
  assert.equal((await page('limit=10&offset=0&kind=ranking')).total, 0);
  assert.equal((await page('limit=10&offset=0&kind=demonstration')).total, 100);
  // One task done: "done" finds it, "open" (still needing labelers) the other 99.
  const a = (await lab.post('/api/tasks/next')).json.assignment;
  await lab.post(`/api/assignments/${a.id}/submit`, { completion: 'x' }, idem());
  assert.equal((await page('limit=10&offset=0&state=done')).total, 1);
  assert.equal((await page('limit=10&offset=0&state=open')).total, 99);
  assert.equal((await admin.get('/api/admin/tasks?limit=10&offset=0&state=bogus')).status, 400);
  await app.close();
});

test('duplicate tasks for one prompt are skipped and reported', async () => {
  const { app, admin } = await setup();
  const [p1, p2] = await prompts(admin, ['one', 'two']);
  const first = await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds: [p1] });
  const again = await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds: [p1, p2, p2] });
  assert.equal(again.status, 201);
  assert.equal(again.json.ids.length, 1);
  assert.deepEqual(
    again.json.skipped.map((s: { promptId: number; taskId: number }) => [s.promptId, s.taskId]),
    [[p1, first.json.ids[0]]],
  );
  assert.equal((await admin.get('/api/admin/tasks?limit=10')).json.total, 2);
  await app.close();
});

test("the eval export honours the split; the labeler's task number counts their own tasks", async () => {
  const { app, admin, store } = await setup({ random: () => 0.9 });
  const train = await labeler(app, admin, 'trainer', 'training');
  const held = await labeler(app, admin, 'judge', 'heldout');
  await store.importCandidates([
    { prompt: 't', responses: ['ta'], model: 'm1' },
    { prompt: 't', responses: ['tb'], model: 'm2' },
    { prompt: 'h', responses: ['ha'], model: 'm1', split: 'heldout' },
    { prompt: 'h', responses: ['hb'], model: 'm2', split: 'heldout' },
  ]);
  const all = (await admin.get('/api/admin/prompts?limit=10')).json.prompts;
  const idOf = (text: string) => all.find((p: { text: string }) => p.text === text).id;
  const made = await admin.post('/api/admin/tasks', {
    kind: 'ab',
    promptIds: [idOf('t'), idOf('h')],
    modelA: 'm1',
    modelB: 'm2',
  });
  assert.equal(made.status, 201, made.body as string);
  for (const lab of [train, held]) {
    const a = (await lab.post('/api/tasks/next')).json.assignment;
    // Each labeler's first task is their task 1, whatever its id.
    assert.equal(a.number, 1);
    assert.equal((await lab.post(`/api/assignments/${a.id}/submit`, { choice: 'a' }, idem())).status, 200);
  }
  const exported = async (split: string) =>
    String((await admin.get(`/api/admin/export/eval?split=${split}`)).body)
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).prompt);
  assert.deepEqual(await exported('training'), ['t']);
  assert.deepEqual(await exported('heldout'), ['h']);
  await app.close();
});

/** The schema with every object closed to undeclared properties (TypeBox's Kind symbol is kept by the spread). */
function closed(schema: unknown): TSchema {
  if (Array.isArray(schema)) return schema.map(closed) as unknown as TSchema;
  if (!schema || typeof schema !== 'object') return schema as TSchema;
  const out: Record<string | symbol, unknown> = { ...(schema as object) };
  for (const k of Object.keys(out)) out[k] = closed(out[k]);
  if (out.type === 'object') out.additionalProperties = false;
  return out as unknown as TSchema;
}

test('responses match their declared schemas, and only declared fields go out', async () => {
  const { app, admin } = await setup();
  const lab = await labeler(app, admin, 'lab1');
  await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds: await prompts(admin, ['p']) });
  const checks: [Client, string, TSchema, 'GET' | 'POST'][] = [
    [admin, '/api/me', responses.Me, 'GET'],
    [admin, '/api/admin/users', responses.Users, 'GET'],
    [admin, '/api/admin/settings', responses.Settings, 'GET'],
    [admin, '/api/admin/prompts?limit=5', responses.Prompts, 'GET'],
    [admin, '/api/admin/tasks?limit=5', responses.Tasks, 'GET'],
    [admin, '/api/admin/gold', responses.Gold, 'GET'],
    [admin, '/api/admin/dashboard', responses.Dashboard, 'GET'],
    [lab, '/api/screening', responses.ScreeningState, 'GET'],
    [lab, '/api/tasks/next', responses.NextTask, 'POST'],
    [lab, '/api/conversations', responses.Conversations, 'GET'],
  ];
  for (const [client, url, schema, method] of checks) {
    const r = method === 'GET' ? await client.get(url) : await client.post(url);
    assert.equal(r.status, 200, url);
    // Strict: no property the schema does not declare, at any depth.
    const strict = closed(schema);
    assert.ok(
      Value.Check(strict, r.json),
      `${url}: ${[...Value.Errors(strict, r.json)].map((e) => `${e.path} ${e.message}`)}`,
    );
  }
  await app.close();
});

test('a bulk batch of tasks refreshes PostgreSQL planner statistics, so hand-outs stay on the index', async () => {
  const { app, admin, store } = await setup();
  try {
    const ids = await prompts(
      admin,
      Array.from({ length: 1000 }, (_, i) => `bulk prompt ${i}`),
    );
    assert.equal((await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds: ids })).status, 201);
    if (testDialect() !== 'postgres') return; // SQLite plans without gathered statistics
    const { rows } = await sql<{ analyzed: boolean }>`
      select last_analyze is not null as analyzed from pg_stat_user_tables
      where relname = 'tasks' and schemaname = current_schema()`.execute(store.db);
    assert.deepEqual(rows, [{ analyzed: true }]);
  } finally {
    await app.close();
  }
});
