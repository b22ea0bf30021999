import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import type { RouteInfo } from '../src/server/app.js';
import { NON_JSON_ROUTES } from '../src/server/responses.js';
import { type Client, idem, jsonl, labeler, NDJSON, type Res, setup } from './helpers/server.js';

/** Asserts the status and that the body matches the route's declared response schema for it. */
function declared(routes: RouteInfo[], method: string, url: string, r: Res, status = 200) {
  assert.equal(r.status, status, `${method} ${url}: ${r.body}`);
  const route = routes.find((x) => x.method === method && x.url === url);
  const schema = route?.response?.[String(status)];
  assert.ok(schema, `${method} ${url} declares no ${status} response schema`);
  const errors = [...Value.Errors(schema, r.json)].map((e) => `${e.path}: ${e.message}`);
  assert.deepEqual(errors, [], `${method} ${url}`);
  return r.json;
}

async function world(promptTexts: string[]) {
  const s = await setup();
  await s.admin.req('PUT', '/api/admin/settings', { overlap: 0, goldRate: 0, k: 4 });
  const r = await s.admin.post('/api/admin/prompts', { prompts: promptTexts.map((text) => ({ text })) });
  return { ...s, promptIds: r.json.ids as number[] };
}

const exported = async (admin: Client, kind: string) => (await admin.get(`/api/admin/export/${kind}`)).body as string;

test('review queue: submissions per task and labeler; a rejected one leaves exports and its task returns', async () => {
  const { app, admin, routes, promptIds } = await world(['write a haiku', 'name a colour']);
  const ann = await labeler(app, admin, 'ann');
  const bob = await labeler(app, admin, 'bob');
  await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds });
  const a1 = (await ann.post('/api/tasks/next')).json.assignment;
  await ann.post(`/api/assignments/${a1.id}/submit`, { completion: 'an old pond' }, idem());
  const a2 = (await ann.post('/api/tasks/next')).json.assignment;
  await ann.post(`/api/assignments/${a2.id}/submit`, { completion: 'blue' }, idem());

  const url = '/api/admin/submissions';
  const all = declared(routes, 'GET', url, await admin.get(url));
  assert.equal(all.total, 2);
  assert.deepEqual(all.submissions.map((x: { completion: string }) => x.completion).sort(), ['an old pond', 'blue']);
  const haiku = declared(routes, 'GET', url, await admin.get(`${url}?q=HAIKU&userId=${ann.id}&review=pending`));
  assert.equal(haiku.total, 1);
  assert.equal(haiku.submissions[0].username, 'ann');
  const taskId = haiku.submissions[0].taskId;
  assert.equal((await admin.get(`${url}?taskId=${taskId}`)).json.total, 1);
  assert.equal((await admin.get(`${url}?userId=${bob.id}`)).json.total, 0);

  // Nothing is left for bob; rejecting needs a reason, and then the task needs an answer again.
  assert.equal((await bob.post('/api/tasks/next')).json.assignment, null);
  const review = `${url}/${haiku.submissions[0].assignmentId}/review`;
  assert.equal((await admin.post(review, { decision: 'rejected' })).status, 422);
  assert.equal((await admin.post(review, { decision: 'rejected', reason: '   ' })).status, 422);
  const rejected = declared(
    routes,
    'POST',
    '/api/admin/submissions/:id/review',
    await admin.post(review, { decision: 'rejected', reason: 'not a haiku' }),
  );
  assert.equal(rejected.submission.review, 'rejected');
  assert.equal(rejected.submission.reviewReason, 'not a haiku');
  assert.ok(!(await exported(admin, 'demonstrations')).includes('an old pond'));
  assert.ok((await exported(admin, 'demonstrations')).includes('blue'));
  assert.equal((await admin.get(`${url}?review=rejected`)).json.total, 1);
  // The dashboard counts what the exports hold.
  assert.equal((await admin.get('/api/admin/dashboard')).json.datasets.demonstrations, 1);
  const open = (await admin.get('/api/admin/tasks?state=open')).json.tasks;
  assert.deepEqual(
    open.map((t: { id: number }) => t.id),
    [taskId],
  );
  // The task goes to bob, never back to ann.
  assert.equal((await ann.post('/api/tasks/next')).json.assignment, null);
  const b1 = (await bob.post('/api/tasks/next')).json.assignment;
  assert.equal(b1.prompt, 'write a haiku');
  await bob.post(`/api/assignments/${b1.id}/submit`, { completion: 'frog jumps in' }, idem());
  assert.match(await exported(admin, 'demonstrations'), /frog jumps in/);
  // Accepting the rejected work again brings it back into the exports.
  await admin.post(review, { decision: 'accepted' });
  assert.match(await exported(admin, 'demonstrations'), /an old pond/);
  assert.equal((await admin.post(`${url}/99999/review`, { decision: 'accepted' })).status, 404);
  assert.equal((await ann.get(url)).status, 403);
  await app.close();
});

test('per-labeler figures leave out rejected work and work on archived tasks, as the exports do', async () => {
  const { app, admin } = await world([]);
  await admin.req('PUT', '/api/admin/settings', { overlap: 1, overlapLabelers: 2 });
  const ann = await labeler(app, admin, 'ann');
  const bob = await labeler(app, admin, 'bob');
  await admin.req('POST', '/api/admin/import/candidates', jsonl([{ prompt: 'q', responses: ['w', 'x', 'y', 'z'] }]), {
    headers: NDJSON,
  });
  const ids = (await admin.get('/api/admin/prompts')).json.prompts.map((p: { id: number }) => p.id);
  const [taskId] = (await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: ids })).json.ids;
  const rank = async (who: Client, ranking: unknown) => {
    const a = (await who.post('/api/tasks/next')).json.assignment;
    assert.equal((await who.post(`/api/assignments/${a.id}/submit`, { ranking }, idem())).status, 200);
    return a.id as number;
  };
  await rank(ann, [0, 1, 2, 3]);
  const bobs = await rank(bob, [0, 1, 3, 2]); // agrees on 5 of the 6 pairs
  const dashboard = async () => {
    const d = (await admin.get('/api/admin/dashboard')).json;
    const of = (name: string) => d.labelers.find((l: { username: string }) => l.username === name);
    return { agreement: d.agreement, done: d.datasets.tasks.done, ann: of('ann'), bob: of('bob') };
  };
  const before = await dashboard();
  assert.equal(before.agreement.overlappingTasks, 1);
  assert.equal(before.done, 2);
  for (const l of [before.ann, before.bob]) {
    assert.equal(l.completed, 1);
    assert.equal(l.lastHour, 1);
    assert.ok(l.perHour > 0);
    assert.ok(Math.abs(l.peerAgreement - 5 / 6) < 1e-9);
  }

  const review = `/api/admin/submissions/${bobs}/review`;
  await admin.post(review, { decision: 'rejected', reason: 'ranked at random' });
  const rejected = await dashboard();
  assert.deepEqual(
    { completed: rejected.bob.completed, lastHour: rejected.bob.lastHour, perHour: rejected.bob.perHour },
    { completed: 0, lastHour: 0, perHour: null },
  );
  assert.equal(rejected.bob.peerAgreement, null);
  assert.equal(rejected.ann.peerAgreement, null); // the task has one counted ranking left: no pair to agree
  assert.equal(rejected.ann.completed, 1);
  assert.equal(rejected.done, 1);
  assert.deepEqual(rejected.agreement, { overlappingTasks: 0, labelerPairs: 0, meanPairwiseAgreement: null });

  // Accepting it again brings it back; archiving the task takes everyone's work on it out.
  await admin.post(review, { decision: 'accepted' });
  assert.equal((await dashboard()).bob.completed, 1);
  await admin.req('PATCH', `/api/admin/tasks/${taskId}`, { archived: true });
  const archived = await dashboard();
  assert.deepEqual([archived.ann.completed, archived.bob.completed], [0, 0]);
  assert.equal(archived.agreement.overlappingTasks, 0);
  assert.equal(archived.done, 0);
  await app.close();
});

test('skip and report: the task goes to someone else; reports reach the review queue; archiving hides the prompt', async () => {
  const { app, admin, routes, promptIds } = await world(['p-skip', 'p-bad']);
  const ann = await labeler(app, admin, 'ann');
  const bob = await labeler(app, admin, 'bob');
  await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds });
  const first = (await ann.post('/api/tasks/next')).json.assignment;
  assert.equal(first.prompt, 'p-skip');
  const skip = `/api/assignments/${first.id}/skip`;
  declared(routes, 'POST', '/api/assignments/:id/skip', await ann.post(skip, {}, idem()));
  assert.equal((await ann.post(skip, {}, idem())).status, 409);
  assert.equal((await ann.get(`/api/assignments/${first.id}`)).json.assignment.status, 'skipped');
  const late = await ann.post(`/api/assignments/${first.id}/submit`, { completion: 'x' }, idem());
  assert.equal(late.status, 409);
  const second = (await ann.post('/api/tasks/next')).json.assignment;
  assert.equal(second.prompt, 'p-bad');
  assert.equal((await bob.post('/api/tasks/next')).json.assignment.prompt, 'p-skip');

  const report = `/api/assignments/${second.id}/report`;
  assert.equal((await ann.post(report, { reason: ' ' }, idem())).status, 400);
  const made = declared(
    routes,
    'POST',
    '/api/assignments/:id/report',
    await ann.post(report, { reason: 'asks for a password' }, idem()),
  );
  assert.equal((await ann.post('/api/tasks/next')).json.assignment, null);
  const reports = declared(routes, 'GET', '/api/admin/reports', await admin.get('/api/admin/reports'));
  assert.equal(reports.reports.length, 1);
  assert.equal(reports.reports[0].id, made.reportId);
  assert.equal(reports.reports[0].reason, 'asks for a password');
  assert.equal(reports.reports[0].username, 'ann');
  const resolve = `/api/admin/reports/${made.reportId}/resolve`;
  declared(routes, 'POST', '/api/admin/reports/:id/resolve', await admin.post(resolve, { action: 'archive' }));
  assert.equal((await admin.get('/api/admin/reports')).json.reports.length, 0);
  const resolved = (await admin.get('/api/admin/reports?state=resolved')).json.reports[0];
  assert.equal(resolved.resolution, 'archived');
  assert.equal(resolved.promptArchived, true);
  // The archived prompt and its task are out of the queue, the lists and the exports, and can be restored.
  assert.equal((await bob.post('/api/tasks/next')).json.assignment.prompt, 'p-skip'); // bob's open one
  assert.ok(!(await exported(admin, 'prompts')).includes('p-bad'));
  assert.equal((await admin.get('/api/admin/prompts')).json.total, 1);
  assert.equal((await admin.get('/api/admin/prompts?archived=true')).json.prompts[0].text, 'p-bad');
  assert.equal((await admin.get('/api/admin/tasks?state=archived')).json.total, 1);
  await admin.req('PATCH', `/api/admin/prompts/${promptIds[1]}`, { archived: false });
  assert.match(await exported(admin, 'prompts'), /p-bad/);
  assert.equal((await admin.get('/api/admin/tasks?state=archived')).json.total, 0);
  await app.close();
});

test('edit and archive: prompts until labeled, task targets, gold until met; archived work leaves exports', async () => {
  const { app, admin, routes, promptIds } = await world(['typo promt', 'second']);
  const ann = await labeler(app, admin, 'ann');
  const patch = (url: string, body: object) => admin.req('PATCH', url, body);
  declared(
    routes,
    'PATCH',
    '/api/admin/prompts/:id',
    await patch(`/api/admin/prompts/${promptIds[0]}`, { text: 'typo prompt' }),
  );
  assert.equal((await patch(`/api/admin/prompts/${promptIds[0]}`, {})).status, 400);
  const [taskId] = (await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds: [promptIds[0]] })).json
    .ids;
  const a = (await ann.post('/api/tasks/next')).json.assignment;
  assert.equal(a.prompt, 'typo prompt');
  await ann.post(`/api/assignments/${a.id}/submit`, { completion: 'answer' }, idem());
  const refused = await patch(`/api/admin/prompts/${promptIds[0]}`, { text: 'other' });
  assert.equal(refused.status, 409);
  assert.match(refused.json.message, /archive it/);

  declared(routes, 'PATCH', '/api/admin/tasks/:id', await patch(`/api/admin/tasks/${taskId}`, { target: 2 }));
  assert.equal((await admin.get('/api/admin/tasks?state=open')).json.tasks[0].target, 2);
  await patch(`/api/admin/tasks/${taskId}`, { archived: true });
  assert.equal((await exported(admin, 'demonstrations')).trim(), '');
  assert.equal((await admin.get('/api/admin/submissions')).json.total, 1); // kept, visible to review
  await patch(`/api/admin/tasks/${taskId}`, { archived: false });
  assert.match(await exported(admin, 'demonstrations'), /answer/);
  assert.equal((await patch('/api/admin/tasks/9999', { target: 1 })).status, 404);

  // Gold: editable until met; archiving takes it out of screening.
  const [goldId] = (
    await admin.post('/api/admin/gold', { prompt: 'g', responses: ['a', 'b', 'c'], ranking: [0, 1, 2] })
  ).json.ids;
  declared(routes, 'PATCH', '/api/admin/gold/:id', await patch(`/api/admin/gold/${goldId}`, { ranking: [1, [0, 2]] }));
  assert.equal((await patch(`/api/admin/gold/${goldId}`, { ranking: [0, 0, 1] })).status, 422);
  const gold = declared(routes, 'GET', '/api/admin/gold', await admin.get('/api/admin/gold')).gold[0];
  assert.deepEqual(gold.ranking, [1, [0, 2]]);
  await admin.req('PUT', '/api/admin/screening', { goldIds: [goldId] });
  await patch(`/api/admin/gold/${goldId}`, { archived: true });
  assert.equal((await admin.get('/api/admin/screening')).json.items.length, 0);
  assert.equal((await admin.req('PUT', '/api/admin/screening', { goldIds: [goldId] })).status, 422);
  await app.close();
});

test('guidelines: the admin edits them, every labeler reads them', async () => {
  const { app, admin, routes } = await world([]);
  const ann = await labeler(app, admin, 'ann');
  const before = declared(routes, 'GET', '/api/guidelines', await ann.get('/api/guidelines'));
  assert.match(before.guidelines, /same place/);
  await admin.req('PUT', '/api/admin/settings', { guidelines: 'Be kind.\n\n- rank honestly' });
  assert.equal((await ann.get('/api/guidelines')).json.guidelines, 'Be kind.\n\n- rank honestly');
  assert.equal((await ann.req('PUT', '/api/admin/settings', { guidelines: 'x' })).status, 403);
  await app.close();
});

test('ties: a labeler ranks two answers equal; the store keeps the tie, exports make no pair from it', async () => {
  const { app, admin, routes } = await world([]);
  const ann = await labeler(app, admin, 'ann');
  await admin.req('POST', '/api/admin/import/candidates', jsonl([{ prompt: 'q1', responses: ['w', 'x', 'y', 'z'] }]), {
    headers: NDJSON,
  });
  await admin.req('POST', '/api/admin/import/candidates', jsonl([{ prompt: 'q2', responses: ['m', 'n', 'o', 'p'] }]), {
    headers: NDJSON,
  });
  const ids = (await admin.get('/api/admin/prompts')).json.prompts.map((p: { id: number }) => p.id);
  await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: ids });
  const a = (await ann.post('/api/tasks/next')).json.assignment;
  const submit = (id: number, ranking: unknown) => ann.post(`/api/assignments/${id}/submit`, { ranking }, idem());
  assert.equal((await submit(a.id, [[0], 1, 2, 3])).status, 400); // a tie of one is not a tie
  assert.equal((await submit(a.id, [[0, 1], 1, 2, 3])).status, 422);
  declared(routes, 'POST', '/api/assignments/:id/submit', await submit(a.id, [2, [0, 3], 1]));
  const b = (await ann.post('/api/tasks/next')).json.assignment;
  assert.equal((await submit(b.id, [[0, 1, 2, 3]])).status, 200); // all equal: kept, but teaches nothing
  const rankings = (await exported(admin, 'rankings'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(rankings.length, 1);
  assert.deepEqual(rankings[0].ranking, [2, [0, 3], 1]);
  const pairs = (await exported(admin, 'pairwise'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    pairs.map((p) => `${p.chosen}>${p.rejected}`),
    ['y>w', 'y>z', 'y>x', 'w>x', 'z>x'],
  );
  // The review queue shows the tied ranking as submitted.
  const subs = (await admin.get('/api/admin/submissions?kind=ranking')).json.submissions;
  assert.deepEqual(subs.map((x: { ranking: unknown }) => x.ranking).sort(), [[2, [0, 3], 1], [[0, 1, 2, 3]]].sort());
  await app.close();
});

test('a rejected A/B judgment leaves the eval export and the held-out win rates', async () => {
  const says = (name: string) => ({
    generate: async (prompt: string, k: number) => Array.from({ length: k }, () => `${name}: ${prompt}`),
  });
  const s = await setup({ candidateSources: { sft: says('sft'), ppo: says('ppo') } });
  const { app, admin } = s;
  await admin.req('PUT', '/api/admin/settings', { screeningRequired: false, overlap: 0 });
  const { ids } = (await admin.post('/api/admin/prompts', { prompts: [{ text: 'h1', split: 'heldout' }] })).json;
  assert.equal((await admin.post('/api/admin/evals', { modelA: 'ppo', modelB: 'sft', prompts: ids })).status, 201);
  const judge = await labeler(app, admin, 'judge', 'heldout');
  const a = (await judge.post('/api/tasks/next')).json.assignment;
  await judge.post(`/api/assignments/${a.id}/submit`, { choice: a.a.startsWith('ppo') ? 'a' : 'b' }, idem());
  const n = async () => {
    const r = await admin.get('/api/admin/evals/ratings');
    assert.equal(r.status, 200, r.body as string);
    return r.json.vsBaseline[0]?.n ?? 0;
  };
  assert.equal(await n(), 1);
  await admin.post(`/api/admin/submissions/${a.id}/review`, { decision: 'rejected', reason: 'clicked at random' });
  assert.equal(await n(), 0);
  assert.equal(((await admin.get('/api/admin/export/eval?split=heldout')).body as string).trim(), '');
  await app.close();
});

test('every JSON route declares its response schema; the GET routes answer in it', async () => {
  const { app, admin, routes } = await world(['p']);
  const ann = await labeler(app, admin, 'ann');
  const missing = routes
    .filter((r) => !NON_JSON_ROUTES[`${r.method} ${r.url}`])
    .filter((r) => !r.response || !Object.keys(r.response).some((s) => s === '200' || s === '201'))
    .map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(missing, []);
  for (const r of routes.filter(
    (x) => x.method === 'GET' && !x.url.includes(':') && !NON_JSON_ROUTES[`GET ${x.url}`],
  )) {
    const client = r.auth === 'labeler' ? ann : admin;
    declared(routes, 'GET', r.url, await client.get(r.url));
  }
  await app.close();
});
