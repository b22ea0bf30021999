import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, labeler, setup } from './helpers/server.js';

const PUBLIC = new Set(['GET /api/health', 'POST /api/auth/login']);
const sample = (url: string) => url.replace(':id', '1').replace(':kind', 'prompts');

test('login: bad credentials are refused; cookie is HttpOnly, SameSite=Strict, kept no longer than a session may live', async () => {
  const { app, admin } = await setup();
  const c = new Client(app);
  assert.equal((await c.login('admin', 'wrong-password')).status, 401);
  assert.equal((await c.login('nobody', 'whatever-pass')).status, 401);
  const r = await c.login('admin', 'admin-password');
  assert.equal(r.status, 200);
  const cookie = r.raw.cookies.find((x) => x.name === 'ik_session')!;
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.maxAge, 7 * 24 * 3600);
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
  assert.equal((await store.prompts.list({ limit: 10, offset: 0 })).total, 0);
  assert.equal((await admin.get('/api/me')).status, 401);
  await app.close();
});

test('login rate limit: per account and address, 429 with Retry-After, nothing else locked out', async () => {
  const { app, clock } = await setup({ loginThrottle: { maxFailures: 3, windowMs: 60_000 } });
  const attempt = (username: string, password: string, remoteAddress = '10.0.0.1') =>
    app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password }, remoteAddress });
  for (let i = 0; i < 3; i++) {
    assert.equal((await attempt('admin', 'wrong-password')).statusCode, 401);
    clock.t += 1000;
  }
  // Even the right password is refused now, before it is checked; the wait is until the first failure ages out.
  const locked = await attempt('admin', 'admin-password');
  assert.equal(locked.statusCode, 429);
  assert.equal(locked.json().error, 'too_many_attempts');
  assert.match(locked.json().message, /"admin"/);
  assert.equal(locked.headers['retry-after'], String(60 - 3));
  assert.equal(locked.cookies.length, 0);
  // Another address, or another account from the same address, is not affected.
  assert.equal((await attempt('admin', 'admin-password', '10.0.0.2')).statusCode, 200);
  assert.equal((await attempt('nobody', 'wrong-password')).statusCode, 401);
  // Once the oldest failure leaves the window one more try is allowed; a success forgives the rest.
  clock.t += 57_000;
  assert.equal((await attempt('admin', 'admin-password')).statusCode, 200);
  for (let i = 0; i < 2; i++) assert.equal((await attempt('admin', 'wrong-password')).statusCode, 401);
  assert.equal((await attempt('admin', 'admin-password')).statusCode, 200);
  await app.close();
});

test('sessions renew on use up to an absolute cap; an idle session expires', async () => {
  const hour = 3600_000;
  const { app, clock, admin, store } = await setup({ sessionTtlMs: 2 * hour, sessionMaxAgeMs: 5 * hour });
  const signedInAt = clock.t;
  assert.equal((await admin.get('/api/me')).json.expiresAt, signedInAt + 2 * hour);
  // Used every 90 minutes, the session outlives its 2-hour idle limit...
  for (const minutes of [90, 180, 270]) {
    clock.t = signedInAt + minutes * 60_000;
    const me = await admin.get('/api/me');
    assert.equal(me.status, 200, `${minutes} min`);
    assert.equal(me.json.expiresAt, Math.min(clock.t + 2 * hour, signedInAt + 5 * hour));
  }
  // ... but not its 5-hour cap.
  clock.t = signedInAt + 5 * hour;
  const capped = await admin.post('/api/admin/prompts', { prompts: [{ text: 'x' }] });
  assert.equal(capped.status, 401);
  assert.equal(capped.json.error, 'session_expired');
  assert.equal((await store.prompts.list({ limit: 1, offset: 0 })).total, 0);

  // Left idle for longer than the idle limit, a fresh session expires.
  await admin.login('admin', 'admin-password');
  clock.t += 2 * hour - 1;
  assert.equal((await admin.get('/api/me')).status, 200);
  clock.t += 2 * hour;
  assert.equal((await admin.get('/api/me')).json.error, 'session_expired');
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
  const r = await admin.req('PUT', '/api/admin/settings', { k: 7, overlap: 0.25, candidateModels: ['imported'] });
  assert.equal(r.status, 200);
  assert.equal(r.json.settings.k, 7);
  assert.equal((await admin.get('/api/admin/settings')).json.settings.overlap, 0.25);
  await app.close();
});
