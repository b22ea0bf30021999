import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Client, idem, jsonl, labeler, NDJSON, setup } from './helpers/server.js';

async function prompts(admin: Client, texts: string[], split = 'training'): Promise<number[]> {
  const r = await admin.post('/api/admin/prompts', { prompts: texts.map((text) => ({ text, split })) });
  assert.equal(r.status, 201, r.body as string);
  return r.json.ids;
}

async function tasks(admin: Client, kind: string, promptIds: number[], extra: object = {}): Promise<number[]> {
  const r = await admin.post('/api/admin/tasks', { kind, promptIds, ...extra });
  assert.equal(r.status, 201, r.body as string);
  return r.json.ids;
}

test('screening: required before real tasks; gold rankings never shown; pass unlocks tasks', async () => {
  const { app, admin, store } = await setup();
  const lab = await labeler(app, admin, 'newbie', 'training', false);
  await tasks(admin, 'demonstration', await prompts(admin, ['p1']));
  const next = await lab.post('/api/tasks/next');
  assert.equal(next.status, 403);
  assert.equal(next.json.error, 'screening_required');
  // Build the screening test from gold items.
  const g1 = await admin.post('/api/admin/gold', {
    prompt: 'g1',
    responses: ['a', 'b', 'c', 'd'],
    ranking: [2, 0, 1, 3],
  });
  assert.equal(g1.status, 201);
  assert.equal(
    (await admin.post('/api/admin/gold', { prompt: 'g', responses: ['a', 'b'], ranking: [0, 0] })).status,
    422,
  );
  const imp = await admin.req(
    'POST',
    '/api/admin/import/gold',
    jsonl([{ prompt: 'g2', responses: ['x', 'y', 'z', 'w'], ranking: [0, 1, 2, 3] }]),
    { headers: NDJSON },
  );
  assert.equal(imp.status, 200);
  const gold = (await admin.get('/api/admin/gold')).json.gold;
  assert.equal(gold.length, 2);
  const goldIds = gold.map((g: { id: number }) => g.id);
  assert.equal((await lab.post('/api/screening/submit', { answers: [] }, idem())).status, 409); // no test yet
  assert.equal((await admin.req('PUT', '/api/admin/screening', { goldIds: [999] })).status, 422);
  assert.equal((await admin.req('PUT', '/api/admin/screening', { goldIds, passThreshold: 0.8 })).status, 200);
  assert.equal((await admin.get('/api/admin/screening')).json.items.length, 2);

  const s = await lab.get('/api/screening');
  assert.equal(s.json.items.length, 2);
  assert.equal(JSON.stringify(s.json).includes('ranking'), false);
  // Invalid and partial answers are refused and change nothing.
  assert.equal(
    (await lab.post('/api/screening/submit', { answers: [{ goldId: goldIds[0], ranking: [0, 1, 2, 3] }] }, idem()))
      .status,
    422,
  );
  assert.equal(
    (
      await lab.post(
        '/api/screening/submit',
        {
          answers: [
            { goldId: goldIds[0], ranking: [0, 0, 1, 2] },
            { goldId: goldIds[1], ranking: [0, 1, 2, 3] },
          ],
        },
        idem(),
      )
    ).status,
    422,
  );
  assert.equal((await lab.post('/api/screening/submit', { answers: [] })).status, 400); // no idempotency key
  const fail = await lab.post(
    '/api/screening/submit',
    {
      answers: [
        { goldId: goldIds[0], ranking: [3, 1, 0, 2] },
        { goldId: goldIds[1], ranking: [3, 2, 1, 0] },
      ],
    },
    idem(),
  );
  assert.equal(fail.status, 200);
  assert.equal(fail.json.passed, false);
  assert.equal((await lab.post('/api/tasks/next')).status, 403);
  const pass = await lab.post(
    '/api/screening/submit',
    {
      answers: [
        { goldId: goldIds[0], ranking: [2, 0, 1, 3] },
        { goldId: goldIds[1], ranking: [0, 1, 3, 2] },
      ],
    },
    idem(),
  );
  assert.equal(pass.json.passed, true);
  // Pass or fail only: a score would teach the gold answers over a few attempts.
  assert.equal(pass.json.score, undefined);
  const t = await lab.post('/api/tasks/next');
  assert.equal(t.status, 200);
  assert.equal(t.json.assignment.kind, 'demonstration');
  // Gold agreement counts every attempt, the failed one too (two items each).
  const scores = (await store.db.selectFrom('screening_results').select('score').orderBy('id').execute()).map(
    (r) => r.score,
  );
  assert.equal(scores.length, 2);
  assert.ok(Math.abs(scores[1] - (1 + 5 / 6) / 2) < 1e-9);
  const dash = await admin.get('/api/admin/dashboard');
  assert.ok(Math.abs(dash.json.labelers[0].goldAgreement - (scores[0] + scores[1]) / 2) < 1e-9);
  await app.close();
});

test('screening attempts are limited by an admin setting; every attempt is kept; the admin can let a labeler through', async () => {
  const { app, admin, store } = await setup();
  const lab = await labeler(app, admin, 'tries', 'training', false);
  await admin.post('/api/admin/gold', { prompt: 'g', responses: ['a', 'b', 'c', 'd'], ranking: [0, 1, 2, 3] });
  const goldId = (await admin.get('/api/admin/gold')).json.gold[0].id;
  await admin.req('PUT', '/api/admin/screening', { goldIds: [goldId], passThreshold: 0.9 });
  assert.equal((await admin.req('PUT', '/api/admin/settings', { screeningMaxAttempts: 2 })).status, 200);
  const wrong = { answers: [{ goldId, ranking: [3, 2, 1, 0] }] };
  assert.equal((await lab.get('/api/screening')).json.attemptsLeft, 2);
  const first = await lab.post('/api/screening/submit', wrong, idem());
  assert.deepEqual({ passed: first.json.passed, left: first.json.attemptsLeft }, { passed: false, left: 1 });
  assert.equal((await lab.post('/api/screening/submit', wrong, idem())).json.attemptsLeft, 0);
  const s = (await lab.get('/api/screening')).json;
  assert.deepEqual({ left: s.attemptsLeft, items: s.items }, { left: 0, items: [] });
  const third = await lab.post('/api/screening/submit', { answers: [{ goldId, ranking: [0, 1, 2, 3] }] }, idem());
  assert.equal(third.status, 403);
  assert.match(third.json.message, /ask an admin/);
  assert.equal((await store.db.selectFrom('screening_results').selectAll().execute()).length, 2);
  // Failed attempts weigh in gold agreement: 0 on both.
  assert.equal((await admin.get('/api/admin/dashboard')).json.labelers[0].goldAgreement, 0);
  // The admin waives screening: tasks open.
  await admin.req('PATCH', `/api/admin/users/${lab.id}`, { screeningPassed: true });
  assert.notEqual((await lab.post('/api/tasks/next')).status, 403);
  await app.close();
});

test('demonstration: submit once; replay returns the stored result; a second key is refused; nothing stored twice', async () => {
  const { app, admin, store } = await setup();
  const lab = await labeler(app, admin, 'lab1');
  await tasks(admin, 'demonstration', await prompts(admin, ['Write a poem <b>now</b>']));
  const a = (await lab.post('/api/tasks/next')).json.assignment;
  assert.equal(a.prompt, 'Write a poem <b>now</b>');
  // Re-asking returns the same open assignment.
  assert.equal((await lab.post('/api/tasks/next')).json.assignment.id, a.id);
  assert.equal((await lab.get(`/api/assignments/${a.id}`)).json.assignment.id, a.id);
  const url = `/api/assignments/${a.id}/submit`;
  assert.equal((await lab.post(url, { completion: 'x' })).status, 400); // missing Idempotency-Key
  assert.equal((await lab.post(url, { ranking: [0, 1, 2, 3] }, idem())).status, 422); // wrong kind of body
  assert.equal((await lab.post(url, { completion: 'x', extra: 1 }, idem())).status, 400);
  const key = idem();
  const first = await lab.post(url, { completion: '<script>alert(1)</script> roses' }, key);
  assert.equal(first.status, 200);
  const replay = await lab.post(url, { completion: '<script>alert(1)</script> roses' }, key);
  assert.equal(replay.status, 200);
  assert.equal(replay.headers['idempotent-replayed'], 'true');
  assert.deepEqual(replay.json, first.json);
  assert.equal((await lab.post(url, { completion: 'different' }, key)).status, 409);
  const again = await lab.post(url, { completion: 'again' }, idem());
  assert.equal(again.status, 409);
  const rows = await store.db.selectFrom('demonstrations').selectAll().execute();
  assert.equal(rows.length, 1);
  assert.equal(rows[0].completion, '<script>alert(1)</script> roses');
  const exp = await admin.get('/api/admin/export/demonstrations');
  assert.equal(
    exp.body,
    `${JSON.stringify({ prompt: 'Write a poem <b>now</b>', completion: '<script>alert(1)</script> roses' })}\n`,
  );
  assert.match(String(exp.headers['content-type']), /application\/x-ndjson/);
  assert.equal((await lab.post('/api/tasks/next')).json.assignment, null);
  await app.close();
});

test('abandoned assignments go back to the pool; a late submit is stored only while its task still has room', async () => {
  const { app, admin, store, clock } = await setup();
  const minute = 60_000;
  assert.equal((await admin.req('PUT', '/api/admin/settings', { assignmentTimeoutMinutes: -1 })).status, 400);
  const settings = await admin.req('PUT', '/api/admin/settings', { assignmentTimeoutMinutes: 10, overlap: 0 });
  assert.equal(settings.status, 200);
  const [slow, quick] = [await labeler(app, admin, 'slow'), await labeler(app, admin, 'quick')];
  const heldout = await labeler(app, admin, 'heldout-lab', 'heldout');
  const [t1, t2] = await tasks(admin, 'demonstration', await prompts(admin, ['first', 'second']));
  const demonstrations = async () => (await store.db.selectFrom('demonstrations').selectAll().execute()).length;
  const taskRow = async (id: number) =>
    (await admin.get('/api/admin/tasks?limit=10')).json.tasks.find((t: { id: number }) => t.id === id);

  const a1 = (await slow.post('/api/tasks/next')).json.assignment;
  assert.equal(a1.prompt, 'first');
  assert.equal(a1.expiresAt, clock.t + 10 * minute);
  // Past the deadline the task goes to the next labeler who asks; the late submit then stores nothing.
  clock.t += 11 * minute;
  const b1 = (await quick.post('/api/tasks/next')).json.assignment;
  assert.equal(b1.prompt, 'first');
  assert.equal((await slow.get(`/api/assignments/${a1.id}`)).json.assignment.status, 'expired');
  const key = idem();
  const late = await slow.post(`/api/assignments/${a1.id}/submit`, { completion: 'too late' }, key);
  assert.equal(late.status, 410);
  assert.equal(late.json.error, 'expired');
  assert.match(late.json.message, /nothing was stored/);
  assert.equal(await demonstrations(), 0);
  assert.equal((await slow.post(`/api/assignments/${a1.id}/submit`, { completion: 'too late' }, key)).status, 410);
  assert.equal((await quick.post(`/api/assignments/${b1.id}/submit`, { completion: 'on time' }, idem())).status, 200);
  assert.deepEqual([(await taskRow(t1)).done, (await taskRow(t1)).open], [1, 0]);

  // The slow labeler gets new work, not the expired assignment; this time nobody else takes the task in time.
  const a2 = (await slow.post('/api/tasks/next')).json.assignment;
  assert.equal(a2.prompt, 'second');
  clock.t += 11 * minute;
  // Any labeler asking for work releases overdue assignments.
  assert.equal((await heldout.post('/api/tasks/next')).json.assignment, null);
  assert.equal((await taskRow(t2)).open, 0);
  const lateKey = idem();
  const accepted = await slow.post(`/api/assignments/${a2.id}/submit`, { completion: 'late but wanted' }, lateKey);
  assert.equal(accepted.status, 200);
  const replay = await slow.post(`/api/assignments/${a2.id}/submit`, { completion: 'late but wanted' }, lateKey);
  assert.equal(replay.json.storedId, accepted.json.storedId);
  assert.equal(await demonstrations(), 2);
  // It took its place back: the task is full and goes to nobody else.
  assert.equal((await quick.post('/api/tasks/next')).json.assignment, null);
  assert.deepEqual([(await taskRow(t2)).done, (await taskRow(t2)).open], [1, 0]);
  await app.close();
});

test('gold items are mixed into live ranking work: indistinguishable, scored on the dashboard, never exported', async () => {
  const { app, admin } = await setup({ random: () => 0 }); // every draw under the gold rate mixes gold in
  assert.equal((await admin.req('PUT', '/api/admin/settings', { goldRate: 1.5 })).status, 400);
  await admin.req('PUT', '/api/admin/settings', { goldRate: 0.5, overlap: 0 });
  const goldRanking = [0, 1, 2, 3];
  const goldIds: number[] = [];
  for (const prompt of ['screening gold', 'live gold 1', 'live gold 2']) {
    const r = await admin.post('/api/admin/gold', {
      prompt,
      responses: ['g0', 'g1', 'g2', 'g3'],
      ranking: goldRanking,
    });
    goldIds.push(r.json.ids[0]);
  }
  await admin.req('PUT', '/api/admin/screening', { goldIds: [goldIds[0]] });
  await admin.req(
    'POST',
    '/api/admin/import/candidates',
    jsonl(['q1', 'q2', 'q3'].map((prompt) => ({ prompt, responses: ['a', 'b', 'c', 'd'] }))),
    { headers: NDJSON },
  );
  const promptIds = (await admin.get('/api/admin/prompts')).json.prompts.map((p: { id: number }) => p.id);
  await tasks(admin, 'ranking', promptIds);
  const lab = await labeler(app, admin, 'lab1');
  const seen: string[] = [];
  const answers = [
    [0, 1, 3, 2],
    [3, 2, 1, 0],
    [1, 0, 2, 3],
  ];
  for (const ranking of answers) {
    const a = (await lab.post('/api/tasks/next')).json.assignment;
    seen.push(a.prompt);
    assert.deepEqual(Object.keys(a).sort(), ['expiresAt', 'id', 'kind', 'number', 'prompt', 'responses', 'status']);
    assert.equal((await lab.post(`/api/assignments/${a.id}/submit`, { ranking }, idem())).status, 200);
  }
  // Live gold first (the screening item is never repeated), then real work once no unseen gold is left.
  assert.deepEqual(seen, ['live gold 1', 'live gold 2', 'q1']);
  const me = (await admin.get('/api/admin/dashboard')).json.labelers.find(
    (l: { username: string }) => l.username === 'lab1',
  );
  // [0,1,3,2] agrees with gold on 5 of 6 pairs, [3,2,1,0] on none.
  assert.ok(Math.abs(me.goldAgreement - (5 / 6 + 0) / 2) < 1e-9, String(me.goldAgreement));
  assert.equal(me.goldChecks, 2);
  // Gold answers and gold prompts stay out of the admin's lists and every export.
  const exported = JSON.parse((await admin.get('/api/admin/export/rankings')).body as string);
  assert.equal(exported.prompt, 'q1');
  assert.deepEqual(exported.ranking, answers[2]);
  assert.equal(((await admin.get('/api/admin/export/prompts')).body as string).includes('gold'), false);
  assert.equal((await admin.get('/api/admin/prompts')).json.total, 3);
  assert.equal((await admin.get('/api/admin/tasks')).json.total, 3);

  // With the rate at 0 nobody meets gold; once the pool is empty nobody is handed gold alone.
  await admin.req('PUT', '/api/admin/settings', { goldRate: 0 });
  const other = await labeler(app, admin, 'lab2');
  for (const expected of ['q2', 'q3']) {
    const a = (await other.post('/api/tasks/next')).json.assignment;
    assert.equal(a.prompt, expected);
    assert.equal((await other.post(`/api/assignments/${a.id}/submit`, { ranking: [0, 1, 2, 3] }, idem())).status, 200);
  }
  await admin.req('PUT', '/api/admin/settings', { goldRate: 1 });
  assert.equal((await other.post('/api/tasks/next')).json.assignment, null);
  await app.close();
});

test('a late answer to a gold check is still scored: gold tasks have no capacity to lose', async () => {
  const { app, admin, clock } = await setup({ random: () => 0 });
  await admin.req('PUT', '/api/admin/settings', { goldRate: 1, overlap: 0, assignmentTimeoutMinutes: 1 });
  await admin.post('/api/admin/gold', { prompt: 'gold', responses: ['g0', 'g1', 'g2', 'g3'], ranking: [0, 1, 2, 3] });
  await admin.req('POST', '/api/admin/import/candidates', jsonl([{ prompt: 'q', responses: ['a', 'b', 'c', 'd'] }]), {
    headers: NDJSON,
  });
  await tasks(
    admin,
    'ranking',
    (await admin.get('/api/admin/prompts')).json.prompts.map((p: { id: number }) => p.id),
  );
  const [slow, other] = [await labeler(app, admin, 'slow'), await labeler(app, admin, 'other')];
  const late = (await slow.post('/api/tasks/next')).json.assignment;
  assert.equal(late.prompt, 'gold');
  clock.t += 2 * 60_000;
  assert.equal((await other.post('/api/tasks/next')).json.assignment.prompt, 'gold'); // releases the slow one's
  const r = await slow.post(`/api/assignments/${late.id}/submit`, { ranking: [0, 1, 2, 3] }, idem());
  assert.equal(r.status, 200);
  const slowRow = (await admin.get('/api/admin/dashboard')).json.labelers.find(
    (l: { username: string }) => l.username === 'slow',
  );
  assert.deepEqual([slowRow.goldChecks, slowRow.goldAgreement], [1, 1]);
  await app.close();
});

test('concurrent retries with one Idempotency-Key store exactly once', async () => {
  const { app, admin, store } = await setup();
  const lab = await labeler(app, admin, 'lab1');
  await tasks(admin, 'demonstration', await prompts(admin, ['p']));
  const a = (await lab.post('/api/tasks/next')).json.assignment;
  const key = idem();
  const rs = await Promise.all(
    Array.from({ length: 10 }, () => lab.post(`/api/assignments/${a.id}/submit`, { completion: 'c' }, key)),
  );
  assert.ok(rs.every((r) => r.status === 200));
  assert.ok(rs.every((r) => r.json.storedId === rs[0].json.storedId));
  assert.equal((await store.db.selectFrom('demonstrations').selectAll().execute()).length, 1);
  await app.close();
});

test('ranking: K candidates from the configured source; invalid rankings refused and change nothing', async () => {
  const { app, admin, store } = await setup();
  const lab = await labeler(app, admin, 'lab1');
  await admin.req('PUT', '/api/admin/settings', { k: 5, overlap: 0 });
  const imp = await admin.req(
    'POST',
    '/api/admin/import/candidates',
    jsonl([{ prompt: 'q', responses: ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'] }]),
    { headers: NDJSON },
  );
  assert.equal(imp.json.imported, 1);
  assert.deepEqual((await admin.get('/api/admin/models')).json.models, ['imported']);
  const [pq, pz] = (await admin.get('/api/admin/prompts?limit=10')).json.prompts
    .map((p: { id: number }) => p.id)
    .concat(await prompts(admin, ['no candidates']));
  const bad = await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: [pq, pz] });
  assert.equal(bad.status, 422);
  assert.equal(bad.json.details[0].promptId, pz);
  assert.equal((await admin.get('/api/admin/tasks')).json.total, 0); // all or nothing
  await tasks(admin, 'ranking', [pq]);
  const a = (await lab.post('/api/tasks/next')).json.assignment;
  assert.deepEqual(a.responses, ['r0', 'r1', 'r2', 'r3', 'r4']);
  const url = `/api/assignments/${a.id}/submit`;
  const invalid = [
    { ranking: [0, 1, 2, 3] },
    { ranking: [0, 1, 2, 3, 3] },
    { ranking: [0, 1, 2, 3, 5] },
    { ranking: [0, 1, 2, 3, 4], likert: [1, 2, 3, 4] },
    { ranking: [0, 1, 2, 3, 4], likert: [1, 2, 3, 4, 8] },
    { ranking: [0, 1, 2, 3, 4], flags: { hallucination: [7] } },
    { completion: 'x' },
  ];
  for (const body of invalid) assert.equal((await lab.post(url, body, idem())).status, 422, JSON.stringify(body));
  assert.equal((await lab.post(url, { ranking: [0, 1, 2, 3, 4], flags: { rude: [1] } }, idem())).status, 400);
  assert.equal((await store.db.selectFrom('rankings').selectAll().execute()).length, 0);
  assert.equal((await lab.get(`/api/assignments/${a.id}`)).json.assignment.status, 'open');
  const label = {
    ranking: [4, 0, 1, 3, 2],
    likert: [5, 4, 1, 2, 7],
    flags: { hallucination: [2, 3], expresses_opinion: [0] },
  };
  assert.equal((await lab.post(url, label, idem())).status, 200);
  const exp = await admin.get('/api/admin/export/rankings');
  assert.deepEqual(JSON.parse(exp.body as string), {
    prompt: 'q',
    responses: ['r0', 'r1', 'r2', 'r3', 'r4'],
    ...label,
    labeler: 'lab1',
  });
  const pw = (await admin.get('/api/admin/export/pairwise')).body as string;
  assert.equal(pw.trim().split('\n').length, 10);
  assert.deepEqual(JSON.parse(pw.split('\n')[0]), { prompt: 'q', chosen: 'r4', rejected: 'r0' });
  await app.close();
});

test('A/B evaluation: order randomised per labeler, model names hidden, result stored un-swapped', async () => {
  const { app, admin } = await setup({ random: () => 0 }); // always swap
  const lab = await labeler(app, admin, 'lab1');
  await admin.req(
    'POST',
    '/api/admin/import/candidates',
    jsonl([
      { prompt: 'q', responses: ['from sft'], model: 'sft' },
      { prompt: 'q', responses: ['from ppo'], model: 'ppo' },
    ]),
    { headers: NDJSON },
  );
  const [pid] = (await admin.get('/api/admin/prompts')).json.prompts.map((p: { id: number }) => p.id);
  assert.equal((await admin.post('/api/admin/tasks', { kind: 'ab', promptIds: [pid], modelA: 'sft' })).status, 422);
  await tasks(admin, 'ab', [pid], { modelA: 'sft', modelB: 'ppo' });
  const a = (await lab.post('/api/tasks/next')).json.assignment;
  assert.deepEqual({ a: a.a, b: a.b }, { a: 'from ppo', b: 'from sft' });
  assert.equal(JSON.stringify(a).includes('model'), false);
  assert.equal((await lab.post(`/api/assignments/${a.id}/submit`, { choice: 'x' }, idem())).status, 400);
  assert.equal((await lab.post(`/api/assignments/${a.id}/submit`, { choice: 'a' }, idem())).status, 200);
  const ev = JSON.parse((await admin.get('/api/admin/export/eval')).body as string);
  assert.deepEqual(ev, {
    prompt: 'q',
    model_a: 'sft',
    model_b: 'ppo',
    response_a: 'from sft',
    response_b: 'from ppo',
    winner: 'b',
    labeler: 'lab1',
  });
  await app.close();
});

test("held-out isolation: each group sees only its split; nobody sees another labeler's assignment", async () => {
  const { app, admin } = await setup();
  const train = await labeler(app, admin, 'train1');
  const held = await labeler(app, admin, 'held1', 'heldout');
  await tasks(admin, 'demonstration', await prompts(admin, ['h1', 'h2'], 'heldout'));
  await tasks(admin, 'demonstration', await prompts(admin, ['t1']));
  const seen: Record<string, string[]> = { train: [], held: [] };
  for (const [name, c] of [
    ['train', train],
    ['held', held],
  ] as const) {
    for (;;) {
      const a = (await c.post('/api/tasks/next')).json.assignment;
      if (!a) break;
      seen[name].push(a.prompt);
      assert.equal((await c.post(`/api/assignments/${a.id}/submit`, { completion: 'c' }, idem())).status, 200);
    }
  }
  assert.deepEqual(seen, { train: ['t1'], held: ['h1', 'h2'] });
  // Another labeler's assignment is not found, neither to read nor to submit.
  const other = await labeler(app, admin, 'held2', 'heldout');
  const h = await labeler(app, admin, 'held3', 'heldout');
  await tasks(admin, 'demonstration', await prompts(admin, ['h3'], 'heldout'));
  const mine = (await other.post('/api/tasks/next')).json.assignment;
  assert.equal((await h.get(`/api/assignments/${mine.id}`)).status, 404);
  assert.equal((await h.post(`/api/assignments/${mine.id}/submit`, { completion: 'steal' }, idem())).status, 404);
  const ex = (await admin.get('/api/admin/export/demonstrations?split=heldout')).body as string;
  assert.equal(ex.trim().split('\n').length, 2);
  assert.equal(((await admin.get('/api/admin/export/demonstrations')).body as string).trim().split('\n').length, 1);
  await app.close();
});

test('overlap: a task goes to two labelers, never twice to one; agreement shows on the dashboard', async () => {
  const { app, admin, store } = await setup();
  await admin.req('PUT', '/api/admin/settings', { overlap: 1, overlapLabelers: 2 });
  await admin.req(
    'POST',
    '/api/admin/import/candidates',
    jsonl([
      { prompt: 'q1', responses: ['a', 'b', 'c', 'd'] },
      { prompt: 'q2', responses: ['a', 'b', 'c', 'd'] },
    ]),
    { headers: NDJSON },
  );
  const ids = (await admin.get('/api/admin/prompts')).json.prompts.map((p: { id: number }) => p.id);
  await tasks(admin, 'ranking', ids);
  const labs = [await labeler(app, admin, 'l1'), await labeler(app, admin, 'l2'), await labeler(app, admin, 'l3')];
  const got: string[][] = [[], [], []];
  const rankings = [
    [0, 1, 2, 3],
    [0, 1, 3, 2],
    [3, 2, 1, 0],
  ];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < labs.length; i++) {
      const a = (await labs[i].post('/api/tasks/next')).json.assignment;
      if (!a) continue;
      got[i].push(a.prompt);
      assert.equal(
        (await labs[i].post(`/api/assignments/${a.id}/submit`, { ranking: rankings[i] }, idem())).status,
        200,
      );
    }
  }
  // q1 fills up with l1 and l2, so l3 gets q2, which l1 then completes; l2 is never given q1 again.
  assert.deepEqual(got, [['q1', 'q2'], ['q1'], ['q2']]);
  const dupes = await store.db
    .selectFrom('assignments')
    .select(['task_id', 'user_id', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy(['task_id', 'user_id'])
    .having((eb) => eb.fn.countAll(), '>', 1)
    .execute();
  assert.equal(dupes.length, 0);
  const d = (await admin.get('/api/admin/dashboard')).json;
  assert.equal(d.agreement.overlappingTasks, 2);
  assert.ok(Math.abs(d.agreement.meanPairwiseAgreement - (5 / 6 + 0) / 2) < 1e-9);
  assert.equal(d.datasets.rankings, 4);
  assert.equal(d.datasets.pairwiseFromRankings, 24);
  assert.equal(d.labelers.find((l: { username: string }) => l.username === 'l1').completed, 2);
  const list = (await admin.get('/api/admin/tasks')).json;
  assert.deepEqual(
    list.tasks.map((t: { done: number; target: number }) => [t.done, t.target]),
    [
      [2, 2],
      [2, 2],
    ],
  );
  await app.close();
});

test('oversize text and oversize bodies get 413 and change nothing', async () => {
  const { app, admin, store } = await setup({ maxTextChars: 100, bodyLimitBytes: 4096 });
  const lab = await labeler(app, admin, 'lab1');
  const r = await admin.post('/api/admin/prompts', { prompts: [{ text: 'x'.repeat(101) }] });
  assert.equal(r.status, 413);
  assert.equal(r.json.error, 'text_too_long');
  const big = await admin.post('/api/admin/prompts', { prompts: [{ text: 'x'.repeat(5000) }] });
  assert.equal(big.status, 413);
  assert.equal((await store.prompts.list({ limit: 1, offset: 0 })).total, 0);
  await tasks(admin, 'demonstration', await prompts(admin, ['p']));
  const a = (await lab.post('/api/tasks/next')).json.assignment;
  assert.equal(
    (await lab.post(`/api/assignments/${a.id}/submit`, { completion: 'y'.repeat(101) }, idem())).status,
    413,
  );
  assert.equal((await lab.get(`/api/assignments/${a.id}`)).json.assignment.status, 'open');
  await app.close();
});
