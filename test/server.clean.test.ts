/** Clean data, always: strict request types, no blank or duplicate answers, no degenerate pairs in any export. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CandidateSource } from '../src/store/index.js';
import { type Client, idem, jsonl, labeler, NDJSON, setup } from './helpers/server.js';

async function demoAssignment(admin: Client, lab: Client, text = 'p'): Promise<number> {
  const p = await admin.post('/api/admin/prompts', { prompts: [{ text }] });
  assert.equal((await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds: p.json.ids })).status, 201);
  return (await lab.post('/api/tasks/next')).json.assignment.id;
}

test('strict request types: a completion of true, 12345, ["a"] or null is a 400, never coerced to text', async () => {
  const { app, admin, store } = await setup();
  const lab = await labeler(app, admin, 'lab1');
  const id = await demoAssignment(admin, lab);
  for (const completion of [true, 12345, ['a'], null]) {
    const r = await lab.post(`/api/assignments/${id}/submit`, { completion }, idem());
    assert.equal(r.status, 400, `${JSON.stringify(completion)} → ${r.status} ${r.body}`);
  }
  // Other bodies too: a number is not a prompt text, a string is not a boolean.
  assert.equal((await admin.post('/api/admin/prompts', { prompts: [{ text: 7 }] })).status, 400);
  assert.equal((await admin.req('PUT', '/api/admin/settings', { screeningRequired: 'false' })).status, 400);
  assert.equal((await admin.req('PUT', '/api/admin/settings', { k: '5' })).status, 400);
  // Query strings and path parameters are text on the wire and still read as numbers.
  assert.equal((await admin.get('/api/admin/prompts?limit=5&offset=0')).status, 200);
  assert.equal((await store.db.selectFrom('demonstrations').selectAll().execute()).length, 0);
  await app.close();
});

test('an empty or whitespace answer is refused (422) and stores nothing', async () => {
  const { app, admin, store } = await setup();
  const lab = await labeler(app, admin, 'lab1');
  const id = await demoAssignment(admin, lab);
  for (const completion of ['', '   \n\t ']) {
    const r = await lab.post(`/api/assignments/${id}/submit`, { completion }, idem());
    assert.equal(r.status, 422, JSON.stringify(completion));
    assert.match(r.json.message, /empty/);
  }
  assert.equal((await lab.get(`/api/assignments/${id}`)).json.assignment.status, 'open');
  assert.equal((await store.db.selectFrom('demonstrations').selectAll().execute()).length, 0);
  await app.close();
});

test('imports refuse blank answers, repeated responses and chosen == rejected, naming the line', async () => {
  const { app, admin, store } = await setup();
  const cases: [string, object, RegExp][] = [
    ['demonstrations', { prompt: 'p', completion: '  ' }, /"completion" is empty/],
    ['rankings', { prompt: 'p', responses: ['a', 'a', 'b', 'c'], ranking: [0, 1, 2, 3] }, /same text/],
    ['rankings', { prompt: 'p', responses: ['a', ' ', 'b', 'c'], ranking: [0, 1, 2, 3] }, /empty/],
    ['candidates', { prompt: 'p', responses: ['x', 'x'] }, /same text/],
    ['pairwise', { prompt: 'p', chosen: 'same', rejected: 'same' }, /same text/],
    ['pairwise', { prompt: 'p', chosen: '', rejected: 'r' }, /empty/],
    ['eval', { prompt: 'p', model_a: 'a', model_b: 'b', response_a: '', response_b: 'r', winner: 'a' }, /empty/],
    ['prompts', { prompt: ' ' }, /empty/],
  ];
  for (const [kind, rec, message] of cases) {
    const r = await admin.req('POST', `/api/admin/import/${kind}`, jsonl([rec]), {
      headers: { ...NDJSON, 'x-filename': 'bad.jsonl' },
    });
    assert.equal(r.status, 422, `${kind} ${JSON.stringify(rec)}`);
    assert.match(r.json.details[0].text, /^bad\.jsonl:1: /);
    assert.match(r.json.details[0].text, message);
  }
  assert.equal((await store.prompts.list({ limit: 1, offset: 0 })).total, 0);
  await app.close();
});

test('ranking candidates are distinct: duplicates are resampled, K shrinks when they stay, the task waits below 2', async () => {
  // A source that repeats itself: each call returns the next texts of its script.
  const calls: number[] = [];
  const scripted = (script: string[][]): CandidateSource => ({
    async generate(_prompt, k) {
      calls.push(k);
      return script.shift() ?? [];
    },
  });
  const sources: Record<string, CandidateSource> = {};
  const { app, admin } = await setup({ candidateSources: sources });
  const lab = await labeler(app, admin, 'lab1');
  sources.m = scripted([]);
  await admin.req('PUT', '/api/admin/settings', { k: 4, overlap: 0, candidateModels: ['m'] });
  const [p1, p2, p3] = (
    await admin.post('/api/admin/prompts', { prompts: [{ text: 'a' }, { text: 'b' }, { text: 'c' }] })
  ).json.ids;
  // Two repeats, then a resample brings one new text and repeats: K = 4 is reached with distinct texts.
  sources.m = scripted([
    ['x', 'x', 'y', ' '],
    ['y', 'z', 'x', 'w'],
  ]);
  assert.equal((await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: [p1] })).status, 201);
  const a1 = (await lab.post('/api/tasks/next')).json.assignment;
  assert.deepEqual(a1.responses, ['x', 'y', 'z', 'w']);
  // The source keeps repeating: K shrinks to the distinct texts it gave (3).
  sources.m = scripted([['q', 'q', 'r', 's'], ['q'], ['r'], ['s']]);
  const t2 = await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: [p2] });
  assert.equal(t2.status, 201);
  assert.equal((await lab.post(`/api/assignments/${a1.id}/submit`, { ranking: [0, 1, 2, 3] }, idem())).status, 200);
  assert.deepEqual((await lab.post('/api/tasks/next')).json.assignment.responses, ['q', 'r', 's']);
  // Fewer than two distinct answers: no task, the prompt is reported.
  sources.m = scripted([['same', 'same', ' ', 'same'], ['same'], ['same'], ['same']]);
  const t3 = await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: [p3] });
  assert.equal(t3.status, 422);
  assert.equal(t3.json.details[0].promptId, p3);
  assert.match(t3.json.details[0].message, /distinct/);
  await app.close();
});

test('exports never hold chosen == rejected or a blank answer, also from data stored before these checks', async () => {
  const { app, admin, store } = await setup();
  // Written straight to the store, as an older release or a script could have.
  await store.importRankings([
    { prompt: 'p', responses: ['a', 'b', 'a', ' '], ranking: [2, 1, 0, 3], likert: [3, 5, 7, 1] },
    { prompt: 'q', responses: ['same', 'same'], ranking: [0, 1] },
  ]);
  await store.importPairwise([{ prompt: 'p', chosen: 'c', rejected: 'c' }]);
  const rankings = ((await admin.get('/api/admin/export/rankings')).body as string).trim().split('\n');
  // The repeated "a" keeps its better place (index 2, ranked first); the blank answer leaves; responses keep their
  // order; a record left with one answer leaves.
  assert.deepEqual(
    rankings.map((l) => JSON.parse(l)),
    [{ prompt: 'p', responses: ['b', 'a'], ranking: [1, 0], likert: [5, 7] }],
  );
  const pairs = ((await admin.get('/api/admin/export/pairwise')).body as string).trim().split('\n');
  assert.deepEqual(
    pairs.map((l) => JSON.parse(l)),
    [{ prompt: 'p', chosen: 'a', rejected: 'b' }],
  );
  await app.close();
});
