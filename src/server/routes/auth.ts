/** Sign-in, sign-out and the current session. */
import { DUMMY_HASH, newToken, sha256, verifyPassword } from '../auth.js';
import { fail, type RouteContext, SESSION_COOKIE } from '../context.js';
import { responses as R } from '../responses.js';

export function authRoutes(ctx: RouteContext): void {
  const { app, store, opts, now, loginThrottle, sessionEnd, maxAgeMs, user, S } = ctx;

  app.get('/api/health', { config: { auth: 'public' }, schema: { response: { 200: R.Ok } } }, async () => ({
    ok: true,
  }));

  app.post(
    '/api/auth/login',
    { config: { auth: 'public' }, schema: { body: S.Login, response: { 200: R.Me } } },
    async (req, reply) => {
      const { username, password } = req.body;
      const wait = await loginThrottle.retryAfter(username, req.ip);
      if (wait.ms > 0) {
        const seconds = Math.ceil(wait.ms / 1000);
        reply.header('retry-after', String(seconds));
        const whose = wait.limit === 'address' ? 'from this address' : `for "${username}"`;
        fail(429, 'too_many_attempts', `too many failed sign-ins ${whose}; try again in ${seconds} s`);
      }
      const u = await store.users.forLogin(username);
      const ok = await verifyPassword(password, u?.password_hash ?? DUMMY_HASH);
      if (!u || !ok || u.disabled) {
        await loginThrottle.recordFailure(username, req.ip);
        fail(401, 'bad_credentials', 'wrong username or password');
      }
      await loginThrottle.recordSuccess(username, req.ip);
      const token = newToken();
      const csrfToken = newToken();
      const expiresAt = sessionEnd(now());
      await store.sessions.create({ id: sha256(token), userId: u.id, csrfToken, expiresAt });
      // The browser keeps the cookie for the longest the session may live; the server enforces idle expiry.
      reply.setCookie(SESSION_COOKIE, token, {
        httpOnly: true,
        sameSite: 'strict',
        secure: opts.secureCookies ?? false,
        path: '/',
        maxAge: Math.floor(maxAgeMs / 1000),
      });
      return { user: u.publicUser, csrfToken, expiresAt };
    },
  );

  app.post('/api/auth/logout', { config: { auth: 'any' }, schema: { response: { 200: R.Ok } } }, async (req, reply) => {
    await store.sessions.delete(req.session!.id);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true };
  });

  app.get('/api/me', { config: { auth: 'any' }, schema: { response: { 200: R.Me } } }, async (req) => ({
    user: user(req),
    csrfToken: req.session!.csrfToken,
    expiresAt: req.session!.expiresAt,
  }));
}
