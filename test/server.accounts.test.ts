/** Accounts and limits found wanting in the review: sessions after a reset, the last admin, throttling, proxies, 413s. */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { createServer } from '../src/server/index.js';
import { openStore } from '../src/store/index.js';
import { testDb } from './helpers/db.js';
import { ADMIN, Client, labeler, setup } from './helpers/server.js';

test('a password reset ends every session of that user (the admin who reset their own keeps theirs)', async () => {
  const { app, admin } = await setup();
  const lab = await labeler(app, admin, 'lab1');
  const other = new Client(app);
  await other.login('lab1', 'labeler-pass');
  assert.equal((await lab.get('/api/me')).status, 200);
  const r = await admin.req('PATCH', `/api/admin/users/${lab.id}`, { password: 'a-new-password' });
  assert.equal(r.status, 200);
  for (const c of [lab, other]) assert.equal((await c.get('/api/me')).status, 401);
  assert.equal((await new Client(app).login('lab1', 'labeler-pass')).status, 401);
  assert.equal((await new Client(app).login('lab1', 'a-new-password')).status, 200);
  // An admin changing their own password stays signed in here, but other sessions end.
  const elsewhere = new Client(app);
  await elsewhere.login(ADMIN.username, ADMIN.password);
  const me = (await admin.get('/api/me')).json.user;
  assert.equal((await admin.req('PATCH', `/api/admin/users/${me.id}`, { password: 'admin-password-2' })).status, 200);
  assert.equal((await admin.get('/api/me')).status, 200);
  assert.equal((await elsewhere.get('/api/me')).status, 401);
  await app.close();
});

test('the last active admin cannot be disabled; with a second admin it can', async () => {
  const { app, admin, store } = await setup();
  const me = (await admin.get('/api/me')).json.user;
  const r = await admin.req('PATCH', `/api/admin/users/${me.id}`, { disabled: true });
  assert.equal(r.status, 409);
  assert.match(r.json.message, /last active admin/);
  assert.equal((await store.users.get(me.id))!.disabled, false);
  const second = await admin.post('/api/admin/users', { username: 'admin2', password: 'admin2-pass', role: 'admin' });
  assert.equal(second.status, 201);
  assert.equal((await admin.req('PATCH', `/api/admin/users/${second.json.user.id}`, { disabled: true })).status, 200);
  // admin2 is disabled: admin is the last active one again.
  assert.equal((await admin.req('PATCH', `/api/admin/users/${me.id}`, { disabled: true })).status, 409);
  await app.close();
});

test('restarting with the admin password recovers a locked-out admin: enabled, new password, old sessions gone', async () => {
  const store = await openStore({ db: await testDb() });
  const { app } = await setup({ store });
  const id = (await store.users.forLogin(ADMIN.username))!.id;
  // Locked out as an older release allowed: disabled (straight in the database).
  await store.db.updateTable('users').set({ disabled: 1 }).where('id', '=', id).execute();
  await app.close();
  const again = await createServer({
    store,
    passwordCost: 1024,
    bootstrapAdmin: { username: ADMIN.username, password: 'recovered-password' },
    resetAdmin: true,
  });
  const c = new Client(again.app);
  assert.equal((await c.login(ADMIN.username, ADMIN.password)).status, 401);
  assert.equal((await c.login(ADMIN.username, 'recovered-password')).status, 200);
  assert.equal((await c.get('/api/me')).json.user.role, 'admin');
  // A labeler's name is never turned into an admin.
  await store.users.create({ username: 'lab', passwordHash: 'x', role: 'labeler' });
  await assert.rejects(
    createServer({
      store,
      passwordCost: 1024,
      bootstrapAdmin: { username: 'lab', password: 'p-assword' },
      resetAdmin: true,
    }),
    /"lab" is a labeler/,
  );
  await again.app.close();
  await store.close();
});

test('login throttling also limits one address across usernames; other addresses are not affected', async () => {
  const { app } = await setup({ loginThrottle: { maxFailures: 3, maxFailuresPerAddress: 5, windowMs: 60_000 } });
  const attempt = (username: string, password: string, remoteAddress = '10.0.0.9') =>
    app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password }, remoteAddress });
  for (let i = 0; i < 5; i++) assert.equal((await attempt(`guess${i}`, 'wrong-password')).statusCode, 401);
  const locked = await attempt('someone-else', 'wrong-password');
  assert.equal(locked.statusCode, 429);
  assert.match(locked.json().message, /this address/);
  assert.ok(Number(locked.headers['retry-after']) > 0);
  assert.equal((await attempt(ADMIN.username, ADMIN.password, '10.0.0.10')).statusCode, 200);
  await app.close();
});

test('--trust-proxy: the client address comes from X-Forwarded-For only when trusted; Secure cookies on request', async () => {
  const login = (app: Awaited<ReturnType<typeof setup>>['app'], forwarded: string) =>
    app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: 'nobody', password: 'wrong-password' },
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': forwarded },
    });
  const opts = { loginThrottle: { maxFailures: 1, maxFailuresPerAddress: 1, windowMs: 60_000 } };
  // Behind a proxy every request comes from the proxy's address: without trust, one client locks out everyone.
  const direct = await setup(opts);
  assert.equal((await login(direct.app, '198.51.100.1')).statusCode, 401);
  assert.equal((await login(direct.app, '198.51.100.2')).statusCode, 429);
  await direct.app.close();
  const proxied = await setup({ ...opts, trustProxy: '127.0.0.1', secureCookies: true });
  assert.equal((await login(proxied.app, '198.51.100.1')).statusCode, 401);
  assert.equal((await login(proxied.app, '198.51.100.2')).statusCode, 401);
  assert.equal((await login(proxied.app, '198.51.100.1')).statusCode, 429);
  const ok = await proxied.app.inject({ method: 'POST', url: '/api/auth/login', payload: ADMIN });
  assert.equal(ok.cookies[0].secure, true);
  await proxied.app.close();
});

test('a 10 MB body gets a clean 413 over a real connection: the response arrives, no EPIPE, the server goes on', async () => {
  const { app } = await setup();
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;
  const body = Buffer.alloc(10 * 1024 * 1024, 'a');
  const sent = await new Promise<{ status?: number; error?: string; json?: { error: string } }>((resolve) => {
    const req = http.request(
      {
        port,
        host: '127.0.0.1',
        method: 'POST',
        path: '/api/auth/login',
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(text) }));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code }));
    req.end(body);
  });
  assert.equal(sent.error, undefined, `client saw ${sent.error}`);
  assert.equal(sent.status, 413);
  assert.equal(sent.json?.error, 'body_too_large');
  const health = await fetch(`http://127.0.0.1:${port}/api/health`);
  assert.equal(health.status, 200);
  await app.close();
});
