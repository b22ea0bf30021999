import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import type { ChatModel } from '../src/server/index.js';
import { type Client, idem, jsonl, labeler, NDJSON, setup } from './helpers/server.js';

const imp = (admin: Client, kind: string, body: string, headers: Record<string, string> = {}) =>
  admin.req('POST', `/api/admin/import/${kind}`, body, { headers: { ...NDJSON, ...headers } });

test('import → export round trips for every format, markup kept as inert data', async () => {
  const { app, admin } = await setup();
  const files: Record<string, string> = {
    prompts: jsonl([{ prompt: 'Explain <img src=x onerror=alert(1)>' }, { prompt: 'Ünïcode ✓' }]),
    demonstrations: jsonl([{ prompt: 'p1', completion: '<script>alert("x")</script>' }]),
    rankings: jsonl([
      {
        prompt: 'p2',
        responses: ['a', 'b', 'c', 'd'],
        ranking: [1, 3, 0, 2],
        labeler: 'ext',
        likert: [2, 7, 1, 5],
        flags: { harmful_advice: [0] },
      },
    ]),
    pairwise: jsonl([{ prompt: 'p3', chosen: 'good', rejected: '<b>bad</b>' }]),
    eval: jsonl([{ prompt: 'p4', model_a: 'sft', model_b: 'ppo', response_a: 'x', response_b: 'y', winner: 'tie' }]),
  };
  for (const [kind, body] of Object.entries(files)) {
    const r = await imp(admin, kind, body);
    assert.equal(r.status, 200, `${kind}: ${r.body}`);
    assert.equal(r.json.imported, body.trim().split('\n').length);
  }
  for (const [kind, body] of Object.entries(files)) {
    const q = kind === 'pairwise' ? '?include=comparisons' : '';
    const r = await admin.get(`/api/admin/export/${kind}${q}`);
    assert.equal(r.status, 200);
    // Prompts also picked up the other files' prompts.
    if (kind === 'prompts') assert.ok((r.body as string).startsWith(body), r.body as string);
    else assert.equal(r.body, body, kind);
  }
  // The JSON API returns the same text verbatim (the UI renders it as text).
  const ps = (await admin.get('/api/admin/prompts')).json.prompts;
  assert.equal(ps[0].text, 'Explain <img src=x onerror=alert(1)>');
  // Messages-form demonstrations are accepted.
  const m = await imp(
    admin,
    'demonstrations',
    jsonl([
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
        ],
      },
    ]),
  );
  assert.equal(m.status, 200);
  assert.equal((await admin.get('/api/admin/export/foo')).status, 404);
  assert.equal((await imp(admin, 'foo', '{}')).status, 404);
  await app.close();
});

test('bad JSONL is refused with file:line errors and nothing is imported', async () => {
  const { app, admin, store } = await setup();
  const body = [
    JSON.stringify({ prompt: 'ok', responses: ['a', 'b', 'c', 'd'], ranking: [0, 1, 2, 3] }),
    '{broken',
    JSON.stringify({ prompt: 'bad', responses: ['a', 'b', 'c', 'd'], ranking: [0, 1, 1, 3] }),
  ].join('\n');
  const r = await imp(admin, 'rankings', body, { 'x-filename': 'batch1.jsonl' });
  assert.equal(r.status, 422);
  assert.equal(r.json.error, 'invalid_jsonl');
  assert.deepEqual(
    r.json.details.map((d: { line: number }) => d.line),
    [2, 3],
  );
  assert.match(r.json.details[1].text, /^batch1\.jsonl:3: .*permutation/);
  assert.equal((await store.db.selectFrom('rankings').selectAll().execute()).length, 0);
  assert.equal((await store.prompts.list({ limit: 1, offset: 0 })).total, 0);
  // JSON instead of JSONL is refused.
  assert.equal((await admin.post('/api/admin/import/prompts', { prompt: 'x' })).status, 415);
  await app.close();
});

const events = (body: unknown) =>
  (body as string)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

test('chat: tokens stream as NDJSON; every Nth reply asks for a comparison, stored once as pairwise data', async () => {
  const { app, admin, store } = await setup();
  await admin.req('PUT', '/api/admin/settings', { chatCompareEvery: 2 });
  const lab = await labeler(app, admin, 'chatter');
  const say = (c: Client, content: string, conversationId?: number) => c.post('/api/chat', { content, conversationId });
  const first = await say(lab, 'hello <b>world</b>');
  assert.equal(first.status, 200);
  assert.match(String(first.headers['content-type']), /application\/x-ndjson/);
  const firstEvents = events(first.body);
  const { id: conversationId, type, title } = firstEvents[0];
  assert.deepEqual({ type, title }, { type: 'conversation', title: 'hello <b>world</b>' });
  assert.equal(
    firstEvents
      .filter((e) => e.type === 'token')
      .map((e) => e.text)
      .join(''),
    'hello <b>world</b>',
  );
  assert.equal(firstEvents.at(-1).type, 'done');
  const second = await say(lab, 'again', conversationId);
  const cmp = events(second.body).find((e) => e.type === 'compare');
  assert.ok(cmp, second.body as string);
  assert.notEqual(cmp.a, cmp.b);
  // Resuming shows the pair still to choose; the conversation does not go on before the choice.
  const pending = (await lab.get(`/api/conversations/${conversationId}`)).json.conversation;
  assert.deepEqual(pending.pendingPair, { pairId: cmp.pairId, a: cmp.a, b: cmp.b });
  const early = await say(lab, 'hurry', conversationId);
  assert.equal(early.status, 409);
  assert.equal(early.json.error, 'choice_pending');
  // Another user cannot answer this pair.
  assert.equal((await admin.post('/api/chat/compare', { pairId: cmp.pairId, choice: 'a' }, idem())).status, 404);
  const key = idem();
  assert.equal((await lab.post('/api/chat/compare', { pairId: cmp.pairId, choice: 'b' }, key)).status, 200);
  const replay = await lab.post('/api/chat/compare', { pairId: cmp.pairId, choice: 'b' }, key);
  assert.equal(replay.status, 200);
  assert.equal(replay.headers['idempotent-replayed'], 'true');
  assert.equal((await lab.post('/api/chat/compare', { pairId: cmp.pairId, choice: 'a' }, idem())).status, 409);
  const pw = (await admin.get('/api/admin/export/pairwise')).body as string;
  assert.deepEqual(JSON.parse(pw), {
    prompt: 'user: hello <b>world</b>\nassistant: hello <b>world</b>\nuser: again',
    chosen: cmp.b,
    rejected: cmp.a,
    // The versions that wrote them (one echo model here), as metadata beside the pair.
    chosen_model: 'echo',
    rejected_model: 'echo',
  });
  assert.equal((await store.db.selectFrom('comparisons').selectAll().execute()).length, 1);
  assert.equal((await admin.get('/api/admin/dashboard')).json.datasets.comparisons.chat, 1);
  // The chosen reply continues the conversation.
  const resumed = (await lab.get(`/api/conversations/${conversationId}`)).json.conversation;
  assert.deepEqual(resumed.messages, [
    { role: 'user', content: 'hello <b>world</b>' },
    { role: 'assistant', content: 'hello <b>world</b>' },
    { role: 'user', content: 'again' },
    { role: 'assistant', content: cmp.b },
  ]);
  assert.equal(resumed.pendingPair, null);
  await app.close();
});

test('chat history: each user lists and resumes only their own conversations; bad input changes nothing', async () => {
  const { app, admin, store, clock } = await setup();
  await admin.req('PUT', '/api/admin/settings', { chatCompareEvery: 0 });
  const lab = await labeler(app, admin, 'chatter');
  const older = events((await lab.post('/api/chat', { content: 'first   topic\nwith two lines' })).body)[0].id;
  clock.t += 1000;
  const long = `second topic ${'x'.repeat(100)}`;
  const newer = events((await lab.post('/api/chat', { content: long })).body)[0].id;
  clock.t += 1000;
  assert.equal((await lab.post('/api/chat', { content: 'more on the first', conversationId: older })).status, 200);
  const list = (await lab.get('/api/conversations')).json.conversations;
  // Most recently active first; titles are the first message on one line, shortened.
  assert.deepEqual(
    list.map((c: { id: number; title: string; messages: number }) => [c.id, c.title, c.messages]),
    [
      [older, 'first topic with two lines', 4],
      [newer, `${long.slice(0, 59)}…`, 2],
    ],
  );
  assert.deepEqual((await admin.get('/api/conversations')).json.conversations, []);
  assert.equal((await admin.get(`/api/conversations/${older}`)).status, 404);
  assert.equal((await admin.post('/api/chat', { content: 'hijack', conversationId: older })).status, 404);

  const stored = async () => (await store.db.selectFrom('chat_messages').selectAll().execute()).length;
  const before = await stored();
  for (const [body, status] of [
    [{ content: '' }, 400],
    [{ content: '  \n ' }, 400],
    [{ content: 'x', conversationId: 0 }, 400],
    [{ content: 'x', conversationId: 999 }, 404],
    [{ messages: [{ role: 'user', content: 'x' }] }, 400],
    [{ content: 'z'.repeat(1001) }, 413],
  ] as const) {
    const r = await lab.post('/api/chat', body);
    assert.equal(r.status, status, JSON.stringify(body));
  }
  const invalid = await lab.post('/api/chat', { content: '' });
  assert.match(invalid.json.message, /content/);
  assert.equal(await stored(), before);
  assert.equal((await lab.get('/api/conversations')).json.conversations.length, 2);
  await app.close();
});

test('a prompt list page, task list page and models list', async () => {
  const { app, admin } = await setup();
  await admin.post('/api/admin/prompts', {
    prompts: Array.from({ length: 5 }, (_, i) => ({ text: `p${i}`, split: i % 2 ? 'heldout' : 'training' })),
  });
  const page = await admin.get('/api/admin/prompts?limit=2&offset=1&split=training');
  assert.equal(page.json.total, 3);
  assert.deepEqual(
    page.json.prompts.map((p: { text: string }) => p.text),
    ['p2', 'p4'],
  );
  assert.equal((await admin.get('/api/admin/prompts?limit=0')).status, 400);
  assert.equal((await admin.get('/api/admin/tasks')).json.total, 0);
  assert.deepEqual((await admin.get('/api/admin/models')).json, {
    models: [],
    chatModel: 'echo',
    served: [],
    serveMemory: null,
  });
  await app.close();
});

test('real loopback: serve() listens on localhost and the cookie flow works over HTTP', async () => {
  const { serve } = await import('../src/server/index.js');
  const s = await serve({
    dbPath: ':memory:',
    port: 0,
    passwordCost: 1024,
    bootstrapAdmin: { username: 'root', password: 'root-password' },
  });
  try {
    const login = await fetch(`${s.address}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'root', password: 'root-password' }),
    });
    assert.equal(login.status, 200);
    const setCookie = login.headers.get('set-cookie')!;
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    const me = await fetch(`${s.address}/api/me`, { headers: { cookie: setCookie.split(';')[0] } });
    assert.equal(me.status, 200);
    assert.ok(s.address.includes('127.0.0.1'));
  } finally {
    await s.close();
  }
});

test('stopping a chat reply over HTTP ends the model stream and keeps what was shown', async () => {
  // Yields a word every 20 ms for 2 s unless stopped; records how it ended.
  const ended: string[] = [];
  const slowModel: ChatModel = {
    name: 'slow',
    async *stream(_messages, opts) {
      try {
        for (let i = 0; i < 100; i++) {
          if (opts.signal?.aborted) return void ended.push('aborted');
          await new Promise((r) => setTimeout(r, 20));
          yield `w${i} `;
        }
        ended.push('finished');
      } finally {
        if (ended.length === 0) ended.push('closed');
      }
    },
  };
  const { app, admin, store } = await setup({ chatModel: slowModel });
  await admin.req('PUT', '/api/admin/settings', { chatCompareEvery: 0 });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const ac = new AbortController();
    const res = await fetch(`${address}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: `ik_session=${admin.token}`, 'x-csrf-token': admin.csrf },
      body: JSON.stringify({ content: 'tell me a long story' }),
      signal: ac.signal,
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let received = '';
    while (!received.includes('"token"')) received += (await reader.read()).value;
    ac.abort();
    const shown = received
      .split('\n')
      .filter((l) => l.includes('"token"'))
      .map((l) => JSON.parse(l).text)
      .join('');
    for (let waited = 0; ended.length === 0 && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    assert.ok(['aborted', 'closed'].includes(ended[0]), `the model stream ${ended[0] ?? 'is still running'}`);
    // The part shown is saved as the stream closes, a moment after the model stopped.
    const saved = () => store.db.selectFrom('chat_messages').select(['role', 'content']).orderBy('id').execute();
    let messages = await saved();
    for (let waited = 0; messages.length < 2 && waited < 2000; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
      messages = await saved();
    }
    assert.equal(messages.length, 2);
    assert.equal(messages[1].role, 'assistant');
    // Whatever was sent before the stop is kept: at least what this client read, far less than the whole reply.
    assert.ok(messages[1].content.startsWith(shown) && shown.length > 0, messages[1].content);
    assert.ok(messages[1].content.split(' ').length < 50, messages[1].content);
  } finally {
    // undici leaves a spare connection open when a streamed fetch is aborted; close() used to wait ~70 s for it.
    await closesWithin(app, 5000);
  }
});

/** app.close() returns within `ms` (it waited for Node's 60 s header timeout on request-less sockets). */
async function closesWithin(app: { close(): Promise<void> }, ms: number) {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`app.close() still waiting after ${ms} ms`)), ms);
  });
  await Promise.race([app.close(), late]).finally(() => clearTimeout(timer));
  return Date.now() - t0;
}

test('close() ends at once a connection on which no request started, and lets one in flight finish', async () => {
  const gate: { open?: () => void } = {};
  const slowModel: ChatModel = {
    name: 'gated',
    async *stream() {
      await new Promise<void>((r) => {
        gate.open = r;
      });
      yield 'finished';
    },
  };
  const { app, admin } = await setup({ chatModel: slowModel });
  await admin.req('PUT', '/api/admin/settings', { chatCompareEvery: 0 });
  const address = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
  const idle = connect(Number(address.port), address.hostname);
  idle.on('error', () => {});
  await new Promise((r) => idle.on('connect', r));
  const reply = fetch(`${address.origin}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: `ik_session=${admin.token}`, 'x-csrf-token': admin.csrf },
    body: JSON.stringify({ content: 'hello' }),
  }).then((r) => r.text());
  while (!gate.open) await new Promise((r) => setTimeout(r, 10));
  const closing = closesWithin(app, 5000);
  // The idle socket is ended while the other request is still in flight (or close() gives up after 5 s).
  await Promise.race([new Promise((r) => idle.on('close', r)), closing]);
  gate.open();
  assert.match(await reply, /"finished"/);
  assert.ok((await closing) < 5000);
});
