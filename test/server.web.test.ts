import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { APP_CSP } from '../src/server/index.js';
import { setup } from './helpers/server.js';

test('web UI: index + hashed assets served, SPA fallback for client routes, API paths stay JSON 404s', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ik-web-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'assets'));
  writeFileSync(join(root, 'index.html'), '<!doctype html><div id="root"></div>');
  writeFileSync(join(root, 'assets/index-abc.js'), 'console.log(1)');
  writeFileSync(join(tmpdir(), 'ik-secret.txt'), 'secret');
  const { app } = await setup({ webRoot: root });
  t.after(() => app.close());

  const index = await app.inject({ url: '/' });
  assert.equal(index.statusCode, 200);
  assert.match(String(index.headers['content-type']), /text\/html/);
  assert.equal(index.headers['content-security-policy'], APP_CSP);
  assert.equal(index.headers['cache-control'], 'no-cache');
  for (const route of ['/admin', '/admin/data', '/label', '/chat?x=1', '/login']) {
    const r = await app.inject({ url: route });
    assert.equal(r.statusCode, 200, route);
    assert.equal(r.body, index.body, route);
  }
  const js = await app.inject({ url: '/assets/index-abc.js' });
  assert.equal(js.statusCode, 200);
  assert.match(String(js.headers['content-type']), /text\/javascript/);
  assert.match(String(js.headers['cache-control']), /immutable/);
  assert.equal((await app.inject({ url: '/assets/missing.js' })).statusCode, 404);
  for (const bad of ['/../ik-secret.txt', '/%2e%2e/ik-secret.txt', '/assets/..%2f..%2fik-secret.txt']) {
    const r = await app.inject({ url: bad });
    assert.ok(!r.body.includes('secret'), bad);
  }
  const api = await app.inject({ url: '/api/nope' });
  assert.equal(api.statusCode, 404);
  assert.equal(api.json().error, 'not_found');
  assert.equal(api.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
  assert.equal((await app.inject({ url: '/api/me' })).statusCode, 401); // API routes are unchanged
  rmSync(join(tmpdir(), 'ik-secret.txt'), { force: true });
});
