/**
 * Ranking candidates from several model versions (issue 16): the admin picks a list of sources, a task's K are split
 * evenly across them in turn, stay distinct and non-blank, and every answer keeps the name of the version that wrote
 * it through to the exports. An older database's single setting becomes a list of one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CandidateSource, migratorFor, openStore } from '../src/store/index.js';
import { testDb } from './helpers/db.js';
import { idem, jsonl, labeler, NDJSON, setup } from './helpers/server.js';
import { writeTinyModel } from './helpers/tiny_lm.js';

/** A version that answers "<name> <prompt> <n>" with a fresh n each time (distinct samples). */
function version(name: string, calls: number[] = []): CandidateSource {
  let n = 0;
  return {
    async generate(prompt, k) {
      calls.push(k);
      return Array.from({ length: k }, () => `${name} ${prompt} ${n++}`);
    },
  };
}

/** Each ranking task's responses with their writers, in the order the labeler sees them. */
async function taskResponses(store: Awaited<ReturnType<typeof setup>>['store']) {
  const rows = await store.db
    .selectFrom('tasks')
    .innerJoin('responses', 'responses.set_id', 'tasks.set_id')
    .select(['tasks.id', 'responses.text', 'responses.model', 'responses.idx'])
    .where('tasks.kind', '=', 'ranking')
    .orderBy('tasks.id')
    .orderBy('responses.idx')
    .execute();
  const byTask = new Map<number, { text: string; model: string }[]>();
  for (const r of rows) byTask.set(r.id, [...(byTask.get(r.id) ?? []), { text: r.text, model: r.model }]);
  return [...byTask.values()];
}

const count = (rows: { model: string }[]) => {
  const out: Record<string, number> = {};
  for (const r of rows) out[r.model] = (out[r.model] ?? 0) + 1;
  return out;
};

test('ranking candidates from several versions: K split evenly and in turn, the writer of each answer recorded', async () => {
  const sources: Record<string, CandidateSource> = { sft: version('sft'), ppo: version('ppo'), rm1: version('rm1') };
  const { app, admin, store } = await setup({ candidateSources: sources });
  // Unknown names are refused, naming what is known; the list is stored as given.
  const bad = await admin.req('PUT', '/api/admin/settings', { candidateModels: ['sft', 'nope'] });
  assert.equal(bad.status, 422);
  assert.match(bad.json.message, /nope unknown; known: .*ppo.*sft/);
  assert.equal((await admin.req('PUT', '/api/admin/settings', { candidateModels: ['sft', 'sft'] })).status, 400);
  assert.equal((await admin.req('PUT', '/api/admin/settings', { candidateModels: [] })).status, 400);
  const ok = await admin.req('PUT', '/api/admin/settings', { candidateModels: ['sft', 'ppo'], k: 5, overlap: 0 });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.json.settings.candidateModels, ['sft', 'ppo']);

  const prompts = (
    await admin.post('/api/admin/prompts', { prompts: ['p1', 'p2', 'p3', 'p4'].map((text) => ({ text })) })
  ).json.ids;
  assert.equal((await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: prompts })).status, 201);
  const tasks = await taskResponses(store);
  assert.equal(tasks.length, 4);
  // K = 5 over two versions: 3 + 2, the larger share taking turns from prompt to prompt.
  assert.deepEqual(
    tasks.map((t) => [count(t).sft, count(t).ppo]),
    prompts.map((id: number) => (id % 2 === 0 ? [3, 2] : [2, 3])),
  );
  for (const t of tasks) {
    // Each answer is the one its recorded version wrote.
    for (const r of t) assert.ok(r.text.startsWith(`${r.model} `), JSON.stringify(r));
  }
  // The order is drawn, so that one version does not keep the first places.
  const firsts = new Set(tasks.map((t) => t[0].model));
  const grouped = tasks.every((t) => t.slice(0, count(t)[t[0].model]).every((r) => r.model === t[0].model));
  assert.ok(firsts.size === 2 || !grouped, 'candidates are shuffled across versions');

  // More versions than K: each task gets one answer from each of K versions, the versions taking turns.
  await admin.req('PUT', '/api/admin/settings', { candidateModels: ['sft', 'ppo', 'rm1'], k: 4 });
  const more = (await admin.post('/api/admin/prompts', { prompts: [{ text: 'q1' }, { text: 'q2' }] })).json.ids;
  assert.equal((await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: more })).status, 201);
  const [q1, q2] = (await taskResponses(store)).slice(4);
  const twice = (id: number) => ['sft', 'ppo', 'rm1'][id % 3];
  for (const [t, id] of [
    [q1, more[0]],
    [q2, more[1]],
  ] as const) {
    assert.deepEqual(Object.values(count(t)).sort(), [1, 1, 2]);
    assert.equal(count(t)[twice(id)], 2, `prompt ${id}: ${JSON.stringify(count(t))}`);
  }
  await app.close();
});

test('several versions stay clean: an answer two versions share counts once, a failing version is left out, K shrinks', async () => {
  const scripted = (script: string[][]): CandidateSource => ({
    async generate() {
      return script.shift() ?? [];
    },
  });
  const sources: Record<string, CandidateSource> = {};
  const { app, admin, store } = await setup({ candidateSources: sources });
  sources.a = version('a');
  sources.b = version('b');
  await admin.req('PUT', '/api/admin/settings', { candidateModels: ['a', 'b'], k: 4, overlap: 0 });
  const [p1, p2, p3] = (
    await admin.post('/api/admin/prompts', { prompts: [{ text: 'x' }, { text: 'y' }, { text: 'z' }] })
  ).json.ids;
  // The two versions share an answer (spaced differently) and b once says nothing: the shared one counts once (for
  // whichever version is first in turn), and the two missing answers are asked again, one of each version.
  sources.a = scripted([['4', 'four'], ['4.0']]);
  sources.b = scripted([[' 4 ', '  '], ['IV']]);
  assert.equal((await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: [p1] })).status, 201);
  const [t1] = await taskResponses(store);
  assert.deepEqual(t1.map((r) => r.text.trim()).sort(), ['4', '4.0', 'IV', 'four']);
  assert.deepEqual(
    t1.filter((r) => r.text.trim() !== '4'),
    t1.filter((r) => r.text.trim() !== '4').map((r) => ({ text: r.text, model: r.text === 'IV' ? 'b' : 'a' })),
  );
  // A version that fails is left out for this prompt; the other one's answers make the task.
  sources.a = { generate: async () => Promise.reject(new Error('worker crashed')) };
  sources.b = version('b');
  assert.equal((await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: [p2] })).status, 201);
  assert.deepEqual(count((await taskResponses(store))[1]), { b: 4 });
  // Fewer than two distinct answers from all of them: no task, and the reason names each version.
  sources.b = scripted([['same'], ['same'], ['same'], ['same']]);
  const t3 = await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: [p3] });
  assert.equal(t3.status, 422);
  assert.match(t3.json.details[0].message, /only 1 distinct .*a: worker crashed/);
  await app.close();
});

test('exports carry the version of each answer: rankings as "models", pairs as chosen_model / rejected_model', async () => {
  const sources = { sft: version('sft'), ppo: version('ppo') };
  const { app, admin, store } = await setup({ candidateSources: sources });
  const lab = await labeler(app, admin, 'lab1');
  await admin.req('PUT', '/api/admin/settings', { candidateModels: ['sft', 'ppo'], k: 4, overlap: 0, goldRate: 0 });
  const [pid] = (await admin.post('/api/admin/prompts', { prompts: [{ text: 'hi' }] })).json.ids;
  await admin.post('/api/admin/tasks', { kind: 'ranking', promptIds: [pid] });
  const a = (await lab.post('/api/tasks/next')).json.assignment;
  assert.equal(a.models, undefined, 'the labeler never sees which version wrote an answer');
  assert.equal((await lab.post(`/api/assignments/${a.id}/submit`, { ranking: [3, [0, 1], 2] }, idem())).status, 200);
  const [ranking] = await store.exportRankings('training');
  assert.deepEqual(ranking.responses, a.responses);
  assert.deepEqual(
    ranking.models,
    a.responses.map((t: string) => t.split(' ')[0]),
  );
  const exported = ((await admin.get('/api/admin/export/rankings')).body as string).trim();
  assert.deepEqual(JSON.parse(exported).models, ranking.models);
  const pairs = await store.exportPairwise('training', { rankings: true, comparisons: true });
  assert.equal(pairs.length, 5, 'a tie makes no pair');
  for (const p of pairs) {
    assert.equal(p.chosen_model, p.chosen.split(' ')[0]);
    assert.equal(p.rejected_model, p.rejected.split(' ')[0]);
  }
  // The export reads back in (the writers kept), and rankings imported without model names export as before.
  const imported = jsonl([
    { prompt: 'r', responses: ['u', 'v'], ranking: [1, 0], models: ['sft', 'base'] },
    { prompt: 's', responses: ['u', 'v'], ranking: [0, 1] },
  ]);
  assert.equal((await admin.req('POST', '/api/admin/import/rankings', imported, { headers: NDJSON })).status, 200);
  const all = await store.exportRankings('training');
  assert.deepEqual(all[1].models, ['sft', 'base']);
  assert.equal('models' in all[2], false);
  const wrong = jsonl([{ prompt: 'r', responses: ['u', 'v'], ranking: [1, 0], models: ['sft'] }]);
  const refused = await admin.req('POST', '/api/admin/import/rankings', wrong, { headers: NDJSON });
  assert.equal(refused.status, 422);
  assert.match(refused.json.details[0].text, /:1: "models" must hold 2 model names/);
  await app.close();
});

test('settings: the single candidateModel of earlier releases becomes a list of one (API and stored setting)', async () => {
  const { app, admin } = await setup({ candidateSources: { sft: version('sft') } });
  const r = await admin.req('PUT', '/api/admin/settings', { candidateModel: 'sft' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.settings.candidateModels, ['sft']);
  assert.equal('candidateModel' in r.json.settings, false);
  const both = await admin.req('PUT', '/api/admin/settings', { candidateModel: 'sft', candidateModels: ['sft'] });
  assert.equal(both.status, 422);
  await app.close();

  // A database whose settings an earlier release wrote (before migration 0010).
  const store = await openStore({ db: await testDb() });
  const migrator = await migratorFor(store.db, store.dialect);
  assert.deepEqual(
    (await migrator.migrateTo('0009_curation')).results?.map((r) => r.migrationName),
    ['0011_numbers', '0010_versions'],
  );
  await store.db.insertInto('settings').values({ key: 'candidateModel', value: '"sft-3"' }).execute();
  assert.equal((await migrator.migrateToLatest()).error, undefined);
  assert.deepEqual((await store.settings.get()).candidateModels, ['sft-3']);
  const keys = await store.db.selectFrom('settings').select('key').execute();
  assert.deepEqual(
    keys.map((k) => k.key),
    ['candidateModels'],
  );
  // And back: the list's first name.
  await store.settings.update({ candidateModels: ['ppo-4', 'sft-3'] });
  await migrator.migrateTo('0009_curation');
  const old = await store.db.selectFrom('settings').selectAll().where('key', '!=', 'revision').execute();
  assert.deepEqual(old, [{ key: 'candidateModel', value: '"ppo-4"' }]);
  await store.close();
});

test('registry names are unique: a name given twice is a 409, a folder name or job name taken gets a suffix', async () => {
  const { app, admin, store } = await setup();
  const dir = mkdtempSync(join(tmpdir(), 'ik-versions-'));
  try {
    const first = writeTinyModel(join(dir, 'a', 'model'));
    const second = writeTinyModel(join(dir, 'b', 'model'), { seed: 1 });
    const third = writeTinyModel(join(dir, 'c', 'model'), { seed: 2 });
    assert.equal((await admin.post('/api/admin/models', { path: first, name: 'sft-1' })).status, 201);
    const clash = await admin.post('/api/admin/models', { path: second, name: 'sft-1' });
    assert.equal(clash.status, 409);
    assert.match(clash.json.message, /"sft-1" is already registered \(.*a\/model\); give this one another name/);
    // Named after its folder (as `serve --model DIR` does): "model", then "model-2".
    const named = async (path: string) => (await admin.post('/api/admin/models', { path })).json.model.name;
    assert.equal(await named(second), 'model');
    assert.equal(await named(third), 'model-2');
    assert.equal(await named(third), 'model-2', 'the same folder is the same version');
    // A job's output named like a version an admin registered by hand keeps both servable.
    const job = await store.models.register(
      { name: 'sft-1', path: join(dir, 'job-1'), kind: 'sft', head: 'causal' },
      { suffix: true },
    );
    assert.equal(job.model.name, 'sft-1-2');
    const names = (await store.models.list()).map((m) => m.name);
    assert.equal(new Set(names).size, names.length);
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("migration 0010 renames an older registry's namesakes (the later ones were never served) and keeps the oldest", async () => {
  const store = await openStore({ db: await testDb() });
  const migrator = await migratorFor(store.db, store.dialect);
  await migrator.migrateTo('0009_curation');
  const row = (name: string, path: string) => ({ name, path, kind: 'registered', head: 'causal', created_at: 1 });
  await store.db
    .insertInto('models')
    .values([row('base', '/m/1'), row('base', '/m/2'), row('base-3', '/m/3'), row('base', '/m/4')] as never)
    .execute();
  assert.equal((await migrator.migrateToLatest()).error, undefined);
  assert.deepEqual(
    (await store.models.list()).map((m) => [m.path, m.name]),
    [
      ['/m/1', 'base'],
      ['/m/2', 'base-2'],
      ['/m/3', 'base-3'],
      ['/m/4', 'base-4'],
    ],
  );
  await assert.rejects(
    store.db
      .insertInto('models')
      .values(row('base', '/m/5') as never)
      .execute(),
  );
  await store.close();
});
