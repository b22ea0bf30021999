// Statements (round-trips, BEGIN and COMMIT included) per request on the labeling hot path, so that they cannot
// creep back up: on PostgreSQL each one is a network round-trip, and under load a request's latency is mostly
// those round-trips queueing for the CPU (bench:server). The ceilings are what the routes take today.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openStore } from '../src/store/index.js';
import { testDb, testDialect } from './helpers/db.js';
import { labeler, setup } from './helpers/server.js';

test('labeling hot path: statements per request stay within their ceilings', async () => {
  let sent: string[] = [];
  const store = await openStore({ db: await testDb(), onQuery: (sql) => sent.push(sql) });
  const { app, admin } = await setup({ store, now: store.now });
  await admin.req('PUT', '/api/admin/settings', { screeningRequired: false, overlap: 0 });
  const ids = (await admin.post('/api/admin/prompts', { prompts: ['one', 'two', 'three'].map((text) => ({ text })) }))
    .json.ids;
  await admin.post('/api/admin/tasks', { kind: 'demonstration', promptIds: ids });
  const lab = await labeler(app, admin, 'lab');
  const counted = async <T>(call: () => Promise<T>): Promise<[T, number]> => {
    sent = [];
    const r = await call();
    return [r, sent.length];
  };
  // The first hand-out also sweeps for overdue assignments; later ones within the second do not.
  const first = (await lab.post('/api/tasks/next')).json.assignment.id;
  await lab.post(`/api/assignments/${first}/submit`, { completion: 'x' }, { 'idempotency-key': 'count-key-0' });
  const ceilings = { next: testDialect() === 'postgres' ? 9 : 8, submit: 8, replay: 5 };
  for (const round of [1, 2]) {
    const key = { 'idempotency-key': `count-key-${round}` };
    const [a, next] = await counted(() => lab.post('/api/tasks/next'));
    const id = a.json.assignment.id;
    const [s, submit] = await counted(() => lab.post(`/api/assignments/${id}/submit`, { completion: 'x' }, key));
    const [r, replay] = await counted(() => lab.post(`/api/assignments/${id}/submit`, { completion: 'x' }, key));
    assert.equal(s.status, 200);
    assert.equal(r.json.storedId, s.json.storedId);
    assert.ok(next > 0, 'every statement is seen');
    assert.ok(next <= ceilings.next, `next: ${next} statements, ceiling ${ceilings.next}`);
    assert.ok(submit <= ceilings.submit, `submit: ${submit} statements, ceiling ${ceilings.submit}`);
    assert.ok(replay <= ceilings.replay, `replay: ${replay} statements, ceiling ${ceilings.replay}`);
  }
  await app.close();
  await store.close();
});
