/**
 * The HTTP API (Fastify 5 + TypeBox). Every route declares who may call it in `config.auth`; a route without it
 * fails at registration. State-changing routes (everything but GET/HEAD) need the session's CSRF token in
 * `X-CSRF-Token`. Text is stored exactly as given and only ever returned inside JSON (never HTML), with
 * `nosniff` and a deny-all CSP, so markup and script stay inert data for the UI to render as text.
 * This file builds the app and its hooks; the routes live in routes/, one module per area.
 */
import { createHash } from 'node:crypto';
import { finished } from 'node:stream/promises';
import cookie from '@fastify/cookie';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { TSchema } from '@sinclair/typebox';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { localPath } from '../jobs/model_paths.js';
import {
  ImportedCandidates,
  isUnavailable,
  isUniqueViolation,
  openStore,
  type Store,
  StoreError,
} from '../store/index.js';
import { hashPassword, safeEqual, sha256, verifyPassword } from './auth.js';
import { EchoChatModel } from './chat.js';
import { type Access, fail, type RouteContext, SESSION_COOKIE, type ServerOptions } from './context.js';
import { DEFAULT_LOGIN_THROTTLE, LoginThrottle } from './login_throttle.js';
import { registerReport } from './report.js';
import { adminRoutes } from './routes/admin.js';
import { authRoutes } from './routes/auth.js';
import { chatRoutes } from './routes/chat.js';
import { curationRoutes } from './routes/curation.js';
import { dataRoutes } from './routes/data.js';
import { evalRoutes } from './routes/evals.js';
import { jobRoutes } from './routes/jobs.js';
import { labelingRoutes } from './routes/labeling.js';
import { modelRoutes } from './routes/models.js';
import { schemas } from './schemas.js';
import { closeConnectionsPromptly } from './shutdown.js';
import { registerStatic } from './static.js';
import { strictValidatorCompiler } from './validation.js';

export { type Access, SESSION_COOKIE, type ServerOptions } from './context.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const JSONL_TYPES = ['application/x-ndjson', 'application/jsonl', 'text/plain'];
/** Oversized bodies up to this size are read to the end (and dropped) so that the client gets its 413 cleanly. */
const MAX_DRAINED_BYTES = 64 * 1024 * 1024;

export interface RouteInfo {
  method: string;
  url: string;
  auth: Access;
  /** The declared response schemas by status code (see responses.ts). */
  response?: Record<string, TSchema>;
}

const STORE_STATUS = { not_found: 404, conflict: 409, invalid: 422, forbidden: 403, expired: 410 } as const;

export async function createServer(opts: ServerOptions = {}): Promise<{
  app: FastifyInstance;
  store: Store;
  /** Every route with its access level and response schemas (tests walk this list). */
  routes: RouteInfo[];
}> {
  const store = opts.store ?? (await openStore({ db: opts.dbPath ?? ':memory:', now: opts.now }));
  // The store's clock (on PostgreSQL the database server's), so that session ends computed here are compared in the
  // store on the same clock.
  const now = opts.now ?? store.now;
  const ttl = opts.sessionTtlMs ?? 8 * 3600_000;
  const maxAge = opts.sessionMaxAgeMs ?? 7 * 24 * 3600_000;
  const sessionEnd = (createdAt: number) => Math.min(now() + ttl, createdAt + maxAge);
  // Renewing writes to the database, so a session is extended at most about once a minute of use.
  const renewAfterMs = Math.min(60_000, ttl / 10);
  const loginThrottle = new LoginThrottle(store, opts.loginThrottle ?? DEFAULT_LOGIN_THROTTLE, now);
  const maxTextChars = opts.maxTextChars ?? 20_000;
  const S = schemas({ maxTextChars });
  const served = opts.servedModels;
  const chatModel =
    opts.chatModel ?? (served?.names().length ? served.chatModel(served.names()[0]) : new EchoChatModel());
  const chatModels = (chosen: readonly string[]) => {
    const picked = chosen.filter((n) => served?.has(n)).map((n) => served!.chatModel(n));
    return picked.length > 0 ? picked : [chatModel];
  };
  const random = opts.random ?? Math.random;
  const source = (name: string) =>
    opts.candidateSources?.[name] ??
    (served?.has(name)
      ? served.candidateSource(name)
      : unservable.has(name)
        ? { generate: async () => Promise.reject(new Error(unservable.get(name))) }
        : new ImportedCandidates(store, name));
  // Every causal-LM version in the registry is servable: another server or a training worker may have added one.
  const unservable = new Map<string, string>();
  const refreshModels = async () => {
    if (!served) return;
    for (const m of await store.models.list()) {
      if (m.head !== 'causal' || served.has(m.name)) continue;
      try {
        served.add(m.name, localPath(opts.jobsDir, m.path));
      } catch (e) {
        unservable.set(m.name, (e as Error).message);
      }
    }
  };
  const modelNames = async () => {
    await refreshModels();
    return [
      ...new Set([
        ...Object.keys(opts.candidateSources ?? {}),
        ...(served?.names() ?? []),
        ...(await store.prompts.pooledModels()),
      ]),
    ].sort();
  };

  const boot = opts.bootstrapAdmin;
  if (boot) {
    const fresh = (await store.users.list()).length === 0;
    // A reset that changes nothing is skipped, so that a password kept in the environment keeps sessions alive.
    const u = opts.resetAdmin && !fresh ? await store.users.forLogin(boot.username) : undefined;
    const unchanged = u?.role === 'admin' && !u.disabled && (await verifyPassword(boot.password, u.password_hash));
    if (fresh || (opts.resetAdmin && !unchanged)) {
      await store.users.resetAdmin(boot.username, await hashPassword(boot.password, opts.passwordCost));
    }
  }

  const bodyLimit = opts.bodyLimitBytes ?? 1024 * 1024;
  const importLimit = opts.importLimitBytes ?? 32 * 1024 * 1024;
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit,
    trustProxy: opts.trustProxy ?? false,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(strictValidatorCompiler);
  closeConnectionsPromptly(app as unknown as FastifyInstance);

  await app.register(cookie);
  app.decorateRequest('session', null);
  app.addContentTypeParser(JSONL_TYPES, { parseAs: 'string', bodyLimit: importLimit }, (_req, body, done) =>
    done(null, body),
  );

  // A body over its limit is refused before it is read, but the 413 goes out once the client has finished sending
  // (up to a bound): Fastify's own refusal closes the connection mid-upload, and the client then sees EPIPE instead.
  app.addHook('onRequest', async (req, reply) => {
    const length = Number(req.headers['content-length'] ?? 0);
    const type = req.headers['content-type'] ?? '';
    const limit = JSONL_TYPES.some((t) => type.startsWith(t)) ? importLimit : bodyLimit;
    if (!(length > limit)) return;
    if (length <= MAX_DRAINED_BYTES) {
      req.raw.resume();
      await finished(req.raw).catch(() => {});
    } else {
      reply.header('connection', 'close');
    }
    fail(413, 'body_too_large', `the request body is ${length} bytes; the limit here is ${limit}`);
  });

  const routes: RouteInfo[] = [];
  app.addHook('onRoute', (route) => {
    if (!route.config?.auth) throw new Error(`route ${route.method} ${route.url} declares no config.auth`);
    const response = route.schema?.response as Record<string, TSchema> | undefined;
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routes.push({ method, url: route.url, auth: route.config.auth, response });
    }
  });

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    // The UI's static files set their own CSP and caching; everything else (JSON) gets the deny-all defaults.
    if (!reply.hasHeader('content-security-policy')) {
      reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
    }
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    reply.header('referrer-policy', 'no-referrer');
    return payload;
  });

  // Authentication, role and CSRF checks, before validation so that a stranger learns nothing about a route.
  app.addHook('onRequest', async (req) => {
    const access = req.routeOptions.config.auth;
    if (!access || access === 'public') return;
    const token = req.cookies[SESSION_COOKIE];
    if (!token) fail(401, 'unauthenticated', 'sign in first');
    const session = await store.sessions.get(sha256(token));
    if (session === 'expired') fail(401, 'session_expired', 'your session has expired; sign in again');
    if (!session) fail(401, 'unauthenticated', 'sign in first');
    if (access !== 'any' && session.user.role !== access) {
      fail(403, 'forbidden', `this route is for the ${access} role`);
    }
    if (!SAFE_METHODS.has(req.method)) {
      const csrf = req.headers['x-csrf-token'];
      if (typeof csrf !== 'string' || !safeEqual(csrf, session.csrfToken)) {
        fail(403, 'csrf', 'missing or wrong X-CSRF-Token header');
      }
    }
    const renewed = sessionEnd(session.createdAt);
    if (renewed - session.expiresAt >= renewAfterMs) {
      await store.sessions.extend(session.id, renewed);
      session.expiresAt = renewed;
    }
    req.session = session;
  });

  app.setErrorHandler(
    (err: Error & { statusCode?: number; code?: string; validation?: { keyword: string }[] }, req, reply) => {
      if (err instanceof StoreError) {
        return reply
          .status(STORE_STATUS[err.code])
          .send({ error: err.code, message: err.message, details: err.details });
      }
      if (err.validation) {
        const tooLong = err.validation.some((v) => v.keyword === 'maxLength');
        return reply
          .status(tooLong ? 413 : 400)
          .send({ error: tooLong ? 'text_too_long' : 'invalid_request', message: err.message });
      }
      // The database is out of reach (connection lost, server restarting): the transaction did not commit, so
      // nothing was stored and the client may retry (with its Idempotency-Key) here or on another server.
      if (isUnavailable(err)) {
        req.log.warn(err);
        return reply
          .status(503)
          .header('retry-after', '1')
          .send({ error: 'unavailable', message: 'the database is unavailable; nothing was stored — retry shortly' });
      }
      // Two requests stored the same thing at once (e.g. one username on two servers): the later one loses.
      if (isUniqueViolation(err)) {
        return reply.status(409).send({ error: 'conflict', message: 'this was stored by another request just now' });
      }
      const status = err.statusCode ?? 500;
      if (status >= 500) {
        req.log.error(err);
        return reply.status(500).send({ error: 'internal', message: 'internal error' });
      }
      const code =
        err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? 'body_too_large'
          : err.code?.startsWith('FST_')
            ? 'invalid_request'
            : (err.code ?? 'error');
      return reply.status(status).send({ error: code, message: err.message });
    },
  );
  app.setNotFoundHandler((_req, reply) => reply.status(404).send({ error: 'not_found', message: 'no such route' }));

  const user = (req: FastifyRequest) => req.session!.user;
  const settings = (req: FastifyRequest) => store.settings.get(req.session?.settingsRevision);
  const bodyHash = (body: unknown) =>
    createHash('sha256')
      .update(JSON.stringify(body ?? null))
      .digest('base64url');
  async function idempotent<T>(
    req: FastifyRequest,
    reply: FastifyReply,
    route: string,
    fn: (s: Store) => Promise<T>,
  ): Promise<T> {
    const key = req.headers['idempotency-key'] as string;
    const r = await store.idempotency.run(user(req).id, key, route, bodyHash(req.body), async (s) => ({
      status: 200,
      body: await fn(s),
    }));
    if (r.replayed) reply.header('idempotent-replayed', 'true');
    return r.body;
  }

  const ctx: RouteContext = {
    app,
    store,
    opts,
    S,
    now,
    maxTextChars,
    chatModel,
    chatModels,
    modelNames,
    refreshModels,
    random,
    loginThrottle,
    maxAgeMs: maxAge,
    sessionEnd,
    source,
    user,
    settings,
    idempotent,
  };
  const areas = [
    authRoutes,
    adminRoutes,
    curationRoutes,
    dataRoutes,
    labelingRoutes,
    chatRoutes,
    modelRoutes,
    jobRoutes,
    evalRoutes,
  ];
  for (const register of areas) register(ctx);

  if (opts.reportDir) await registerReport(app as unknown as FastifyInstance, opts.reportDir);
  if (opts.webRoot) await registerStatic(app as unknown as FastifyInstance, opts.webRoot);

  app.addHook('onClose', async () => {
    if (!opts.store) await store.close();
  });
  return { app: app as unknown as FastifyInstance, store, routes };
}
