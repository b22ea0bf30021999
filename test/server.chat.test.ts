/** Chat defects found in the review: small-context models, and replies that say nothing. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type ChatModel, ModelSampler } from '../src/server/index.js';
import { labeler, setup } from './helpers/server.js';
import { writeTinyModel } from './helpers/tiny_lm.js';

// biome-ignore lint/suspicious/noExplicitAny: test convenience
const events = (body: unknown): any[] =>
  String(body)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

/** A model that answers each call with the next reply of its script ('' = nothing at all). */
function scripted(replies: string[]): ChatModel {
  return {
    name: 'scripted',
    async *stream() {
      const r = replies.shift() ?? '';
      for (const piece of r.split(/(?<= )/)) if (piece) yield piece;
    },
  };
}

test('a small-context model: old turns are left out to fit (and the reply says so); a message too long is a 422', async () => {
  const dir = writeTinyModel(mkdtempSync(join(tmpdir(), 'ik-chat-ctx-')), { nPositions: 64 });
  const sampler = await ModelSampler.start({ dir, maxNewTokens: 8 }, 'tiny');
  try {
    const { app, admin } = await setup({ chatModel: sampler });
    await admin.req('PUT', '/api/admin/settings', { chatCompareEvery: 0 });
    const lab = await labeler(app, admin, 'chatter');
    let conversationId: number | undefined;
    const dropped: number[] = [];
    for (let turn = 0; turn < 8; turn++) {
      const r = await lab.post('/api/chat', { content: 'say red then blue then gold please.', conversationId });
      assert.equal(r.status, 200);
      const ev = events(r.body);
      conversationId ??= ev[0].id;
      assert.equal(ev.at(-1).type, 'done', `turn ${turn}: ${r.body}`);
      const ctx = ev.find((e) => e.type === 'context');
      dropped.push(ctx?.droppedMessages ?? 0);
    }
    // The first turns fit; later ones leave out older messages, never the new one.
    assert.equal(dropped[0], 0);
    assert.ok(dropped.at(-1)! > 0, `dropped per turn: ${dropped}`);
    const history = (await lab.get(`/api/conversations/${conversationId}`)).json.conversation.messages;
    assert.equal(history.length, 16); // all kept in the history; only the model's view is cut
    const long = await lab.post('/api/chat', { content: 'red blue gold pink '.repeat(40), conversationId });
    assert.equal(long.status, 422);
    assert.equal(long.json.error, 'context_too_long');
    assert.match(long.json.message, /context/);
    // Nothing of the refused message was kept.
    assert.equal((await lab.get(`/api/conversations/${conversationId}`)).json.conversation.messages.length, 16);
    await app.close();
  } finally {
    await sampler.close();
    rmSync(dir, { recursive: true });
  }
});

test('an empty streamed reply is not stored: no empty bubble, no two user turns in a row, nothing exported', async () => {
  const { app, admin, store } = await setup({ chatModel: scripted(['hello there', '', ' \n ', 'fine']) });
  await admin.req('PUT', '/api/admin/settings', { chatCompareEvery: 0 });
  const lab = await labeler(app, admin, 'chatter');
  const first = events((await lab.post('/api/chat', { content: 'hi' })).body);
  const conversationId = first[0].id;
  for (const _ of [1, 2]) {
    const r = await lab.post('/api/chat', { content: 'and then?', conversationId });
    const ev = events(r.body);
    assert.equal(ev.at(-1).type, 'error', r.body as string);
    assert.equal(ev.at(-1).error, 'empty_reply');
  }
  const ok = events((await lab.post('/api/chat', { content: 'and then?', conversationId })).body);
  assert.equal(ok.at(-1).type, 'done');
  const history = (await lab.get(`/api/conversations/${conversationId}`)).json.conversation.messages;
  assert.deepEqual(
    history.map((m: { role: string; content: string }) => [m.role, m.content]),
    [
      ['user', 'hi'],
      ['assistant', 'hello there'],
      ['user', 'and then?'],
      ['assistant', 'fine'],
    ],
  );
  // A first message answered with nothing leaves no empty conversation behind.
  const lonely = await setup({ chatModel: scripted(['']) });
  const lab2 = await labeler(lonely.app, lonely.admin, 'chatter');
  events((await lab2.post('/api/chat', { content: 'anyone?' })).body);
  assert.deepEqual((await lab2.get('/api/conversations')).json.conversations, []);
  await lonely.app.close();
  assert.equal((await store.db.selectFrom('chat_messages').selectAll().execute()).length, 4);
  await app.close();
});

test('a chat comparison is only offered between two different, non-empty replies', async () => {
  const { app, admin, store } = await setup({ chatModel: scripted(['same', 'same', '', 'only one', 'a', 'b']) });
  await admin.req('PUT', '/api/admin/settings', { chatCompareEvery: 1 });
  const lab = await labeler(app, admin, 'chatter');
  // Two equal replies: shown as one plain reply, no comparison stored.
  const r1 = events((await lab.post('/api/chat', { content: 'q1' })).body);
  assert.equal(
    r1.find((e) => e.type === 'compare'),
    undefined,
  );
  assert.equal(
    r1
      .filter((e) => e.type === 'token')
      .map((e) => e.text)
      .join(''),
    'same',
  );
  // One empty reply: the other is the answer.
  const r2 = events((await lab.post('/api/chat', { content: 'q2', conversationId: r1[0].id })).body);
  assert.equal(
    r2.find((e) => e.type === 'compare'),
    undefined,
  );
  // Two different replies: a comparison.
  const r3 = events((await lab.post('/api/chat', { content: 'q3', conversationId: r1[0].id })).body);
  assert.ok(r3.find((e) => e.type === 'compare'));
  assert.equal((await store.db.selectFrom('comparisons').selectAll().execute()).length, 1);
  await app.close();
});
