import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, labeler, setup } from './helpers/server.js';

const PUBLIC = new Set(['GET /api/health', 'POST /api/auth/login']);
const sample = (url: string) => url.replace(':id', '1').replace(':kind', 'prompts');

test('login: bad credentials are refused; cookie is HttpOnly, SameSite=Strict, expiring', async () => {
  const { app, admin } = await setup();
  const c = new Client(app);
  assert.equal((await c.login('admin', 'wrong-password')).status, 401);
  assert.equal((await c.login('nobody', 'whatever-pass')).status, 401);
  const r = await c.login('admin', 'admin-password');
  assert.equal(r.status, 200);
  const cookie = r.raw.cookies.find((x) => x.name === 'ik_session')!;
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.maxAge, 8 * 3600);
  assert.equal(r.json.user.role, 'admin');
  assert.equal(typeof r.json.csrfToken, 'string');
  assert.equal(r.json.user.password_hash, undefined);
  const me = await admin.get('/api/me');
  assert.equal(me.status, 200);
  assert.equal(me.json.user.username, 'admin');
  assert.equal((await app.inject({ method: 'GET', url: '/api/me' })).statusCode, 401);
  assert.equal((await app.inject({ method: 'GET', url: '/api/health' })).statusCode, 200);
  await app.close();
});

test('logout needs CSRF and ends the session', async () => {
  const { admin, app } = await setup();
  assert.equal((await admin.req('POST', '/api/auth/logout', {}, { csrf: false })).status, 403);
  assert.equal((await admin.post('/api/auth/logout')).status, 200);
  assert.equal((await admin.get('/api/me')).status, 401);
  await app.close();
});

test('expired session gets 401 session_expired and changes nothing', async () => {
  const { admin, app, clock, store } = await setup({ sessionTtlMs: 60_000 });
  clock.t += 61_000;
  const r = await admin.post('/api/admin/prompts', { prompts: [{ text: 'x' }] });
  assert.equal(r.status, 401);
  assert.equal(r.json.error, 'session_expired');
  assert.equal((await store.listPrompts({ limit: 10, offset: 0 })).total, 0);
  assert.equal((await admin.get('/api/me')).status, 401);
  await app.close();
});

test('every route checks authentication, role and (for state changes) CSRF', async () => {
  const { app, admin, routes } = await setup();
  const lab = await labeler(app, admin, 'lab1');
  assert.ok(routes.length >= 28, `found ${routes.length} routes`);
  const anon = new Client(app);
  for (const r of routes) {
    const name = `${r.method} ${r.url}`;
    if (r.auth === 'public') {
      assert.ok(PUBLIC.has(name), `${name} must not be public`);
      continue;
    }
    const url = sample(r.url);
    const a = await anon.req(r.method, url, r.method === 'GET' ? undefined : {});
    assert.equal(a.status, 401, `${name} unauthenticated → ${a.status}`);
    if (r.auth === 'admin' || r.auth === 'labeler') {
      const wrong = r.auth === 'admin' ? lab : admin;
      const w = await wrong.req(r.method, url, r.method === 'GET' ? undefined : {});
      assert.equal(w.status, 403, `${name} wrong role → ${w.status}`);
      assert.equal(w.json.error, 'forbidden');
    }
    if (r.method !== 'GET') {
      const right = r.auth === 'labeler' ? lab : admin;
      const c = await right.req(r.method, url, {}, { csrf: false });
      assert.equal(c.status, 403, `${name} without CSRF → ${c.status}`);
      assert.equal(c.json.error, 'csrf');
      const bad = await right.req(r.method, url, {}, { headers: { 'x-csrf-token': `${right.csrf}x` } });
      assert.equal(bad.status, 403, `${name} wrong CSRF → ${bad.status}`);
    }
  }
  await app.close();
});

test('API responses are JSON with nosniff and a deny-all CSP', async () => {
  const { app, admin } = await setup();
  const r = await admin.get('/api/me');
  assert.match(String(r.headers['content-type']), /application\/json/);
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.match(String(r.headers['content-security-policy']), /default-src 'none'/);
  assert.equal((await admin.get('/api/nope')).status, 404);
  await app.close();
});

test('admin manages users and groups; disabled users lose their sessions', async () => {
  const { app, admin } = await setup();
  const lab = await labeler(app, admin, 'lab1');
  assert.equal(
    (await admin.post('/api/admin/users', { username: 'lab1', password: 'xxxxxxxx', role: 'labeler' })).status,
    409,
  );
  assert.equal(
    (await admin.post('/api/admin/users', { username: 'bad name', password: 'xxxxxxxx', role: 'labeler' })).status,
    400,
  );
  assert.equal(
    (await admin.post('/api/admin/users', { username: 'short', password: 'x', role: 'labeler' })).status,
    400,
  );
  assert.equal(
    (await admin.post('/api/admin/users', { username: 'g', password: 'xxxxxxxx', role: 'labeler', group: 'nope' }))
      .status,
    422,
  );
  const g = await admin.post('/api/admin/groups', { name: 'heldout-2', split: 'heldout' });
  assert.equal(g.status, 201);
  assert.equal((await admin.post('/api/admin/groups', { name: 'heldout-2', split: 'heldout' })).status, 409);
  assert.equal((await admin.get('/api/admin/groups')).json.groups.length, 3);
  const p = await admin.req('PATCH', `/api/admin/users/${lab.id}`, { group: 'heldout-2' });
  assert.equal(p.json.user.group, 'heldout-2');
  assert.equal(p.json.user.split, 'heldout');
  const users = await admin.get('/api/admin/users');
  assert.deepEqual(
    users.json.users.map((u: { username: string }) => u.username),
    ['admin', 'lab1'],
  );
  assert.equal(JSON.stringify(users.json).includes('scrypt'), false);
  assert.equal((await admin.req('PATCH', `/api/admin/users/${lab.id}`, { disabled: true })).status, 200);
  assert.equal((await lab.get('/api/me')).status, 401);
  assert.equal((await lab.login('lab1', 'labeler-pass')).status, 401);
  await app.close();
});

test('settings: K is 4..9, overlap 0..1, unknown keys refused', async () => {
  const { app, admin } = await setup();
  assert.equal((await admin.get('/api/admin/settings')).json.settings.k, 4);
  for (const bad of [{ k: 3 }, { k: 10 }, { overlap: 1.5 }, { nope: 1 }, { chatCompareEvery: -1 }]) {
    assert.equal((await admin.req('PUT', '/api/admin/settings', bad)).status, 400, JSON.stringify(bad));
  }
  const r = await admin.req('PUT', '/api/admin/settings', { k: 7, overlap: 0.25, candidateModel: 'sft' });
  assert.equal(r.status, 200);
  assert.equal(r.json.settings.k, 7);
  assert.equal((await admin.get('/api/admin/settings')).json.settings.candidateModel, 'sft');
  await app.close();
});
