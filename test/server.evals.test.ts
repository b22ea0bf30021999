// Blind A/B evaluations in the app: held-out prompts only, answered by the held-out group only, win rates with
// intervals, the Elo table, Figure 1 against a baseline, and chat comparisons reported apart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { winRateOf } from '../src/rlhf/index.js';
import { SamplerPool } from '../src/server/index.js';
import type { CandidateSource } from '../src/store/index.js';
import { type Client, idem, labeler, setup } from './helpers/server.js';

/** A model that answers every prompt with its own name first, so the test's labeler can tell them apart. */
const says = (name: string): CandidateSource => ({
  generate: async (prompt, k) => Array.from({ length: k }, (_, i) => `${name} says ${prompt} (${i})`),
});

async function addPrompts(admin: Client, texts: string[], split: string): Promise<number[]> {
  const r = await admin.post('/api/admin/prompts', { prompts: texts.map((text) => ({ text, split })) });
  assert.equal(r.status, 201);
  return r.json.ids;
}

/** Answers every A/B task the labeler gets with `pick(prompt, left, right)`; returns the sides it saw. */
async function answerAll(lab: Client, pick: (prompt: string, a: string, b: string) => 'a' | 'b' | 'tie') {
  const seen: { prompt: string; a: string; b: string }[] = [];
  for (;;) {
    const { assignment } = (await lab.post('/api/tasks/next')).json;
    if (!assignment) return seen;
    assert.equal(assignment.kind, 'ab');
    // Blind: the labeler's view names no model.
    assert.deepEqual(Object.keys(assignment).sort(), [
      'a',
      'b',
      'expiresAt',
      'id',
      'kind',
      'number',
      'prompt',
      'status',
    ]);
    seen.push(assignment);
    const choice = pick(assignment.prompt, assignment.a, assignment.b);
    const r = await lab.post(`/api/assignments/${assignment.id}/submit`, { choice }, idem());
    assert.equal(r.status, 200, r.body as string);
  }
}

test('an eval makes blind A/B tasks on held-out prompts that only the held-out group gets; results with intervals', async () => {
  let flip = 0;
  const { app, store, admin } = await setup({
    candidateSources: { sft: says('sft'), ppo: says('ppo'), ppo_ptx: says('ppo_ptx') },
    // Alternates the side each assignment shows first, so both orders are met.
    random: () => (flip++ % 2 === 0 ? 0.25 : 0.75),
  });
  await admin.req('PUT', '/api/admin/settings', { screeningRequired: false });
  const heldout = await addPrompts(admin, ['h1', 'h2', 'h3', 'h4'], 'heldout');
  const training = await addPrompts(admin, ['t1', 't2'], 'training');

  // Refused before anything is stored: the same model twice, an unknown model, a training prompt.
  const bad = [
    { modelA: 'sft', modelB: 'sft' },
    { modelA: 'sft', modelB: 'nope' },
    { modelA: 'ppo', modelB: 'sft', prompts: [heldout[0], training[0]] },
  ];
  const messages = [/two different models/, /no model "nope"/, /prompt \d+ is in the training split/];
  for (const [i, body] of bad.entries()) {
    const r = await admin.post('/api/admin/evals', body);
    assert.equal(r.status, 422);
    assert.match(r.json.message, messages[i]);
  }
  assert.deepEqual((await admin.get('/api/admin/evals')).json.evals, []);
  assert.equal((await admin.get('/api/admin/tasks')).json.total, 0);

  // Without a prompt list: every held-out prompt.
  const created = await admin.post('/api/admin/evals', { modelA: 'ppo', modelB: 'sft' });
  assert.equal(created.status, 201);
  assert.deepEqual({ ...created.json, id: 0 }, { id: 0, tasks: 4, reused: 0, dropped: [] });
  const tasks = (await admin.get('/api/admin/tasks?kind=ab')).json.tasks;
  assert.deepEqual(
    tasks.map((t: { split: string }) => t.split),
    ['heldout', 'heldout', 'heldout', 'heldout'],
  );

  // A training labeler never gets them; the held-out labeler gets all four.
  const trainee = await labeler(app, admin, 'trainee', 'training');
  assert.equal((await trainee.post('/api/tasks/next')).json.assignment, null);
  const judge = await labeler(app, admin, 'judge', 'heldout');
  // Prefers ppo on h1..h3, calls h4 a tie.
  const seen = await answerAll(judge, (prompt, a) => {
    if (prompt === 'h4') return 'tie';
    return a.startsWith('ppo') ? 'a' : 'b';
  });
  assert.equal(seen.length, 4);
  assert.ok(seen.some((s) => s.a.startsWith('ppo')) && seen.some((s) => s.b.startsWith('ppo')), 'both orders shown');
  assert.equal((await trainee.post('/api/tasks/next')).json.assignment, null);

  const { eval: result } = (await admin.get(`/api/admin/evals/${created.json.id}`)).json;
  assert.equal(result.modelA, 'ppo');
  assert.equal(result.tasks, 4);
  assert.equal(result.done, 4);
  assert.deepEqual(result.result, winRateOf({ wins: 3, ties: 1, losses: 0 }));
  assert.equal(result.result.winRate, 0.875);
  assert.ok(result.result.lo > 0.35 && result.result.lo < 0.875 && result.result.hi > 0.875);

  // The same pair again reuses the answered tasks (nobody labels a prompt twice) and reads the same answers.
  const again = await admin.post('/api/admin/evals', { modelA: 'sft', modelB: 'ppo', prompts: heldout.slice(0, 2) });
  assert.deepEqual({ ...again.json, id: 0 }, { id: 0, tasks: 2, reused: 2, dropped: [] });
  const second = (await admin.get(`/api/admin/evals/${again.json.id}`)).json.eval;
  assert.deepEqual([second.result.wins, second.result.ties, second.result.losses], [0, 0, 2]);

  // A third version against sft: it loses h1, h2 and wins h3, h4.
  const third = await admin.post('/api/admin/evals', { modelA: 'ppo_ptx', modelB: 'sft' });
  assert.equal(third.status, 201);
  await answerAll(judge, (prompt, a) => {
    const wantPtx = prompt === 'h3' || prompt === 'h4';
    return a.startsWith('ppo_ptx') === wantPtx ? 'a' : 'b';
  });
  const list = (await admin.get('/api/admin/evals')).json.evals;
  assert.deepEqual(
    list.map((e: { id: number }) => e.id),
    [third.json.id, again.json.id, created.json.id],
  );

  // Elo across all versions; win rates against the most compared version (sft) as Figure 1.
  const ratings = (await admin.get('/api/admin/evals/ratings')).json;
  assert.equal(ratings.baseline, 'sft');
  assert.deepEqual(
    ratings.elo.map((r: { model: string }) => r.model),
    ['ppo', 'ppo_ptx', 'sft'],
  );
  for (const r of ratings.elo) assert.ok(r.lo <= r.rating && r.rating <= r.hi);
  assert.deepEqual(
    ratings.vsBaseline.map((w: { model: string; winRate: number; n: number }) => [w.model, w.winRate, w.n]),
    [
      ['ppo', 0.875, 4],
      ['ppo_ptx', 0.5, 4],
    ],
  );
  assert.deepEqual(ratings.chat, []);
  const vsPtx = (await admin.get('/api/admin/evals/ratings?baseline=ppo_ptx')).json.vsBaseline;
  assert.deepEqual(
    vsPtx.map((w: { model: string }) => w.model),
    ['sft'],
  );
  assert.equal((await admin.get('/api/admin/evals/ratings?baseline=nope')).status, 422);
  const svg = await admin.get('/api/admin/evals/figure.svg');
  assert.equal(svg.status, 200);
  assert.match(svg.headers['content-type'] as string, /image\/svg\+xml/);
  assert.match(svg.body as string, /^<svg[\s\S]*ppo_ptx[\s\S]*<\/svg>$/);

  // Chat comparisons are counted in their own table and never move the held-out figures.
  const user = await store.users.forLogin('judge');
  const conv = await store.chat.createConversation(user!.id, 'hi');
  for (const choice of ['a', 'a', 'b'] as const) {
    const pair = await store.chat.openPair(user!.id, conv, {
      prompt: 'hi',
      a: 'x',
      b: 'y',
      modelA: 'sft',
      modelB: 'ppo',
    });
    await store.chat.choosePair(pair, user!.id, choice);
  }
  const same = await store.chat.openPair(user!.id, conv, {
    prompt: 'hi',
    a: 'x',
    b: 'y',
    modelA: 'sft',
    modelB: 'sft',
  });
  await store.chat.choosePair(same, user!.id, 'a');
  const withChat = (await admin.get('/api/admin/evals/ratings')).json;
  assert.deepEqual(withChat.elo, ratings.elo);
  assert.deepEqual(
    withChat.chat.map((c: { modelA: string; modelB: string; wins: number; losses: number }) => [
      c.modelA,
      c.modelB,
      c.wins,
      c.losses,
    ]),
    [['ppo', 'sft', 1, 2]],
  );
  assert.equal(withChat.chatSameModel, 1);

  // Admin only.
  assert.equal((await judge.get('/api/admin/evals')).status, 403);
  await app.close();
});

test('an eval whose models cannot answer stores nothing and says which prompts failed', async () => {
  const { app, admin } = await setup({
    candidateSources: { sft: says('sft'), mute: { generate: async () => ['  '] } },
  });
  const [p] = await addPrompts(admin, ['h1'], 'heldout');
  const r = await admin.post('/api/admin/evals', { modelA: 'mute', modelB: 'sft' });
  assert.equal(r.status, 422);
  assert.deepEqual(r.json.details, [
    { promptId: p, message: 'the two models gave an empty or the same answer 4 times; nothing to compare' },
  ]);
  assert.deepEqual((await admin.get('/api/admin/evals')).json.evals, []);
  assert.equal((await admin.post('/api/admin/evals', { modelA: 'sft', modelB: 'mute', prompts: [999] })).status, 422);
  await app.close();
});

test('an eval with several labelers per prompt has an agreement figure; prompts with nothing to compare are left out', async () => {
  // "copy" answers h2 exactly as sft does: that prompt has nothing to compare.
  const copy: CandidateSource = {
    generate: async (prompt, k) =>
      Array.from({ length: k }, (_, i) => `${prompt === 'h2' ? 'sft' : 'copy'} says ${prompt} (${i})`),
  };
  const { app, admin, store } = await setup({ candidateSources: { sft: says('sft'), copy } });
  await admin.req('PUT', '/api/admin/settings', { screeningRequired: false, goldRate: 0 });
  const [h1, h2, h3] = await addPrompts(admin, ['h1', 'h2', 'h3'], 'heldout');
  assert.equal((await admin.post('/api/admin/evals', { modelA: 'sft', modelB: 'copy', labelers: 0 })).status, 400);
  const created = await admin.post('/api/admin/evals', { modelA: 'sft', modelB: 'copy', labelers: 2 });
  assert.equal(created.status, 201, created.body as string);
  assert.equal(created.json.tasks, 2);
  assert.deepEqual(created.json.dropped, [
    { promptId: h2, message: 'the two models gave an empty or the same answer 4 times; nothing to compare' },
  ]);
  const targets = await store.db.selectFrom('tasks').select(['prompt_id', 'target']).orderBy('prompt_id').execute();
  assert.deepEqual(targets, [
    { prompt_id: h1, target: 2 },
    { prompt_id: h3, target: 2 },
  ]);
  const evalId = created.json.id;
  const agreement = async () => (await admin.get(`/api/admin/evals/${evalId}`)).json.eval.agreement;
  assert.deepEqual(await agreement(), { rate: null, pairs: 0, tasks: 0 });
  // Two held-out labelers: they agree on h1 (sft) and disagree on h3.
  const sftSide = (a: string) => (a.startsWith('sft') ? 'a' : 'b');
  const j1 = await labeler(app, admin, 'judge1', 'heldout');
  const j2 = await labeler(app, admin, 'judge2', 'heldout');
  assert.equal((await answerAll(j1, (_p, a) => sftSide(a))).length, 2);
  assert.deepEqual(await agreement(), { rate: null, pairs: 0, tasks: 0 }, 'one answer per prompt: no pair yet');
  const seen = await answerAll(j2, (p, a) => (p === 'h1' ? sftSide(a) : sftSide(a) === 'a' ? 'b' : 'a'));
  assert.equal(seen.length, 2, 'each prompt goes to a second labeler');
  assert.deepEqual(await agreement(), { rate: 0.5, pairs: 2, tasks: 2 });
  const row = (await admin.get(`/api/admin/evals/${evalId}`)).json.eval;
  assert.deepEqual([row.done, row.tasks, row.result.wins, row.result.losses], [2, 2, 3, 1]);
  // A later eval of the same pair asking three labelers reuses the tasks and raises them to three.
  const again = await admin.post('/api/admin/evals', { modelA: 'copy', modelB: 'sft', labelers: 3 });
  assert.deepEqual([again.json.tasks, again.json.reused], [2, 2]);
  const j3 = await labeler(app, admin, 'judge3', 'heldout');
  assert.equal((await answerAll(j3, (_p, a) => sftSide(a))).length, 2);
  assert.deepEqual(await agreement(), { rate: 4 / 6, pairs: 6, tasks: 2 });
  // Nothing to compare on any prompt: no eval.
  const none = await admin.post('/api/admin/evals', { modelA: 'sft', modelB: 'copy', prompts: [h2] });
  assert.equal(none.status, 422);
  assert.match(none.json.message, /none of the 1 prompt\(s\) gave two answers/);
  await app.close();
});

test('every causal-LM version in the model registry is served on demand: evals and chat settings can name it', async () => {
  const started: string[] = [];
  const pool = new SamplerPool({
    budgetBytes: 100,
    estimate: () => 60, // room for one version at a time
    start: async (name) => {
      started.push(name);
      const source = says(name);
      return {
        name,
        generate: source.generate,
        async *stream() {
          yield name;
        },
        close: async () => {},
      };
    },
  });
  const { app, store, admin } = await setup({ servedModels: pool });
  await store.models.register({ name: 'sft-1', path: '/models/sft-1', kind: 'sft', head: 'causal' });
  await store.models.register({ name: 'ppo-2', path: '/models/ppo-2', kind: 'ppo', head: 'causal' });
  await store.models.register({ name: 'rm-1', path: '/models/rm-1', kind: 'rm', head: 'scalar' });
  await addPrompts(admin, ['h1', 'h2'], 'heldout');

  const models = (await admin.get('/api/admin/models')).json;
  assert.deepEqual(models.models, ['ppo-2', 'sft-1']);
  assert.deepEqual(
    models.served.map((m: { name: string; loaded: boolean }) => [m.name, m.loaded]),
    [
      ['sft-1', false],
      ['ppo-2', false],
    ],
  );
  const r = await admin.post('/api/admin/evals', { modelA: 'ppo-2', modelB: 'sft-1' });
  assert.equal(r.status, 201, r.body as string);
  assert.equal(r.json.tasks, 2);
  // Both versions sampled, never both loaded at once (60 + 60 > 100).
  assert.ok(started.includes('ppo-2') && started.includes('sft-1'));
  assert.ok(pool.usedBytes() <= 100);

  // Figure 1's default baseline is the registry's SFT version (alphabetically and by count ppo-2 would come first).
  const judge = await labeler(app, admin, 'judge', 'heldout');
  await answerAll(judge, (_p, a) => (a.startsWith('ppo-2') ? 'a' : 'b'));
  const ratings = (await admin.get('/api/admin/evals/ratings')).json;
  assert.equal(ratings.baseline, 'sft-1');
  assert.deepEqual(
    ratings.vsBaseline.map((w: { model: string; winRate: number }) => [w.model, w.winRate]),
    [['ppo-2', 1]],
  );

  // The chat versions are checked against what is served.
  assert.equal((await admin.req('PUT', '/api/admin/settings', { chatModels: ['rm-1'] })).status, 422);
  const ok = await admin.req('PUT', '/api/admin/settings', { chatModels: ['ppo-2', 'sft-1'] });
  assert.deepEqual(ok.json.settings.chatModels, ['ppo-2', 'sft-1']);

  // With two chat versions a comparison turn shows one reply of each; the choice lands in the chat table.
  await admin.req('PUT', '/api/admin/settings', { chatCompareEvery: 1 });
  const reply = await judge.post('/api/chat', { content: 'hello' });
  const events = (reply.body as string)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const compare = events.find((e) => e.type === 'compare');
  assert.deepEqual([compare.a, compare.b].sort(), ['ppo-2', 'sft-1']);
  const chose = await judge.post(
    '/api/chat/compare',
    { pairId: compare.pairId, choice: compare.a === 'ppo-2' ? 'a' : 'b' },
    idem(),
  );
  assert.equal(chose.status, 200);
  const chat = (await admin.get('/api/admin/evals/ratings')).json.chat;
  assert.deepEqual(
    chat.map((c: { modelA: string; modelB: string; wins: number; n: number }) => [c.modelA, c.modelB, c.wins, c.n]),
    [['ppo-2', 'sft-1', 1, 1]],
  );
  await app.close();
  await pool.close();
});
