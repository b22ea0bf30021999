import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createServer, REPORT_CSP } from '../src/server/index.js';
import { labeler, setup } from './helpers/server.js';

test('report route: admins only; index and PNGs of the configured folder, read-only, nothing outside it', async (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'ik-report-'));
  t.after(() => rmSync(parent, { recursive: true, force: true }));
  const dir = join(parent, 'report');
  mkdirSync(dir);
  writeFileSync(join(dir, 'index.html'), '<!doctype html><h1>demo report</h1><svg></svg>');
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
  writeFileSync(join(dir, 'winrate.png'), png);
  writeFileSync(join(parent, 'secret.png'), 'secret');
  writeFileSync(join(dir, 'notes.txt'), 'not a report file type');
  const { app, admin } = await setup({ reportDir: dir });
  t.after(() => app.close());
  // The report shows held-out prompts: strangers and labelers get nothing of it.
  assert.equal((await app.inject({ url: '/report/' })).statusCode, 401);
  assert.equal((await app.inject({ url: '/report/winrate.png' })).statusCode, 401);
  const lab = await labeler(app, admin, 'lab1');
  assert.equal((await lab.get('/report/')).status, 403);
  const get = (url: string) =>
    app.inject({ url, headers: { cookie: `ik_session=${admin.token}` } }) as ReturnType<typeof app.inject>;

  const index = await get('/report/');
  assert.equal(index.statusCode, 200);
  assert.match(String(index.headers['content-type']), /text\/html/);
  assert.equal(index.headers['content-security-policy'], REPORT_CSP);
  assert.match(index.body, /demo report/);
  const redirect = await get('/report');
  assert.equal(redirect.statusCode, 302);
  assert.equal(redirect.headers.location, '/report/');
  const image = await get('/report/winrate.png');
  assert.equal(image.statusCode, 200);
  assert.equal(image.headers['content-type'], 'image/png');
  assert.deepEqual(image.rawPayload, png);
  for (const bad of ['/report/../secret.png', '/report/%2e%2e/secret.png', '/report/..%2fsecret.png']) {
    const r = await get(bad);
    assert.notEqual(r.statusCode, 200, bad);
    assert.ok(!r.body.includes('secret'), bad);
  }
  assert.equal((await get('/report/notes.txt')).statusCode, 404);
  assert.equal((await get('/report/missing.png')).statusCode, 404);
  assert.equal((await app.inject({ method: 'POST', url: '/report/index.html' })).statusCode, 404);
});

test('report route: absent without reportDir; a missing folder fails at start', async (t) => {
  const { app } = await setup();
  t.after(() => app.close());
  assert.equal((await app.inject({ url: '/report/' })).statusCode, 404);
  await assert.rejects(createServer({ reportDir: join(tmpdir(), 'ik-no-such-report') }), /folder not found/);
});
