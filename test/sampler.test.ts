// The served model: chat replies and ranking candidates sampled from a model folder in a worker thread.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generate, loadPretrained } from '../src/models/index.js';
import { type ChatReplyStats, collect, ModelSampler } from '../src/server/index.js';
import { CHAT_TOKENS, Formatter, Tokenizer } from '../src/tokenizer/index.js';
import { labeler, setup } from './helpers/server.js';
import { writeTinyModel } from './helpers/tiny_lm.js';

test('chat streams what the model generates, candidates are K samples, and the server serves them', async () => {
  const dir = writeTinyModel(mkdtempSync(join(tmpdir(), 'ik-sampler-')));
  const sampler = await ModelSampler.start({ dir, maxNewTokens: 12 }, 'tiny');
  try {
    const messages = [{ role: 'user' as const, content: 'say red then blue please.' }];
    const pieces: string[] = [];
    for await (const piece of sampler.stream(messages, { seed: 4 })) pieces.push(piece);
    // The same seed through generate() in this thread gives the same text.
    const tokenizer = Tokenizer.fromDir(dir);
    const format = new Formatter(tokenizer, dir);
    const stop = [format.eosId, tokenizer.tokenToId(CHAT_TOKENS.end)!];
    const want = generate(loadPretrained(dir).eval(), [format.prompt(messages[0].content, messages)], {
      maxNewTokens: 12,
      temperature: 0.8,
      topP: 0.95,
      seed: 4,
      eosTokenIds: stop,
      padTokenId: format.padId,
      decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
    });
    assert.equal(pieces.join(''), want.texts![0]);
    const candidates = await sampler.generate('say gold then pink please.', 4);
    assert.equal(candidates.length, 4);
    assert.equal(await collect(sampler.stream(messages, { seed: 4 })), pieces.join(''));

    const { app, admin } = await setup({ chatModel: sampler, candidateSources: { tiny: sampler } });
    assert.ok((await admin.get('/api/admin/models')).json.models.includes('tiny'));
    const lab = await labeler(app, admin, 'chat-user');
    const res = await lab.post('/api/chat', { content: messages[0].content });
    assert.equal(res.status, 200);
    assert.match(res.body as string, /"type":"done"/);
    await app.close();
  } finally {
    await sampler.close();
    rmSync(dir, { recursive: true });
  }
});

test('stopping a chat reply stops the sampling worker, not just the stream', async () => {
  const dir = writeTinyModel(mkdtempSync(join(tmpdir(), 'ik-sampler-cancel-')), { nPositions: 1024 });
  const finished: ChatReplyStats[] = [];
  // Greedy, so a reply runs to the token limit unless stopped.
  const sampler = await ModelSampler.start({ dir, maxNewTokens: 900, temperature: 0 }, 'tiny', {
    onChatFinished: (s) => finished.push(s),
  });
  try {
    const messages = [{ role: 'user' as const, content: 'say red then blue please.' }];
    const full = await collect(sampler.stream(messages, {}));
    assert.deepEqual(finished, [{ tokens: 900, cancelled: false }]);

    const ac = new AbortController();
    let received = '';
    for await (const piece of sampler.stream(messages, { signal: ac.signal })) {
      received += piece;
      ac.abort();
    }
    // A request queued behind the stopped reply is answered once the worker has dropped it.
    assert.equal((await sampler.generate('say gold then pink please.', 2)).length, 2);
    assert.equal(finished.length, 2);
    assert.equal(finished[1].cancelled, true);
    assert.ok(finished[1].tokens < 900, `the worker went on to ${finished[1].tokens} tokens`);
    assert.ok(full.startsWith(received));

    // Breaking out of the loop stops it the same way.
    for await (const _ of sampler.stream(messages, {})) break;
    await sampler.generate('say gold then pink please.', 1);
    assert.equal(finished[2].cancelled, true);
  } finally {
    await sampler.close();
    rmSync(dir, { recursive: true });
  }
});

test('a folder that is not a model is refused when the sampler starts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-sampler-bad-'));
  writeFileSync(join(dir, 'config.json'), '{"model_type":"bert"}');
  await assert.rejects(ModelSampler.start({ dir }), /cannot serve .*config\.json: field "model_type" "bert"/);
  rmSync(dir, { recursive: true });
});
