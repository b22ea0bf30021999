/**
 * The HTTP API (Fastify 5 + TypeBox). Every route declares who may call it in `config.auth`; a route without it
 * fails at registration. State-changing routes (everything but GET/HEAD) need the session's CSRF token in
 * `X-CSRF-Token`. Text is stored exactly as given and only ever returned inside JSON (never HTML), with
 * `nosniff` and a deny-all CSP, so markup and script stay inert data for the UI to render as text.
 */
import { createHash, randomInt } from 'node:crypto';
import { Readable } from 'node:stream';
import cookie from '@fastify/cookie';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  type CandidateSource,
  EXPORT_KINDS,
  type ExportKind,
  formatLineError,
  IMPORT_KINDS,
  ImportedCandidates,
  type ImportKind,
  openSqliteStore,
  parseJsonl,
  type SessionWithUser,
  type Split,
  type Store,
  StoreError,
  toJsonl,
} from '../store/index.js';
import { DUMMY_HASH, hashPassword, newToken, safeEqual, sha256, verifyPassword } from './auth.js';
import { type ChatMessage, type ChatModel, chatPrompt, collect, conversationTitle, EchoChatModel } from './chat.js';
import { DEFAULT_LOGIN_THROTTLE, LoginThrottle, type LoginThrottleOptions } from './login_throttle.js';
import { registerReport } from './report.js';
import { schemas } from './schemas.js';
import { registerStatic } from './static.js';

export type Access = 'public' | 'any' | 'admin' | 'labeler';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: Access;
  }
  interface FastifyRequest {
    session: SessionWithUser | null;
  }
}

export interface ServerOptions {
  /** An open store; otherwise one is opened at `dbPath` (default ':memory:'). */
  store?: Store;
  dbPath?: string;
  /** Clock for sessions and timestamps (tests move it to expire sessions). */
  now?: () => number;
  /** A session ends after this long unused; each use moves its end this far ahead (sliding renewal). */
  sessionTtlMs?: number;
  /** ... but never beyond this long after sign-in, however busy. */
  sessionMaxAgeMs?: number;
  /** Failed sign-ins allowed per account and client address before 429. */
  loginThrottle?: LoginThrottleOptions;
  /** Longest accepted text field, in characters. */
  maxTextChars?: number;
  /** Largest JSON request body, bytes. */
  bodyLimitBytes?: number;
  /** Largest JSONL import body, bytes. */
  importLimitBytes?: number;
  /** Candidate sources by name; unknown names fall back to imported candidates with that model name. */
  candidateSources?: Record<string, CandidateSource>;
  chatModel?: ChatModel;
  /** scrypt N for new password hashes. */
  passwordCost?: number;
  /** Set the cookie's Secure flag (behind HTTPS). */
  secureCookies?: boolean;
  logger?: boolean;
  /** Creates this admin when no user exists yet. */
  bootstrapAdmin?: { username: string; password: string };
  random?: () => number;
  /** Folder of the built web UI (web/dist) to serve at `/`, with SPA fallback; no UI when absent. */
  webRoot?: string;
  /** A run's report folder (`instructkit demo` writes DIR/report) to serve read-only at `/report/`. */
  reportDir?: string;
}

export const SESSION_COOKIE = 'ik_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function fail(status: number, error: string, message: string): never {
  throw Object.assign(new Error(message), { statusCode: status, code: error, expose: true });
}

const STORE_STATUS = { not_found: 404, conflict: 409, invalid: 422, forbidden: 403, expired: 410 } as const;

export async function createServer(opts: ServerOptions = {}): Promise<{
  app: FastifyInstance;
  store: Store;
  /** Every route with its access level (tests walk this list). */
  routes: { method: string; url: string; auth: Access }[];
}> {
  const now = opts.now ?? Date.now;
  const store = opts.store ?? (await openSqliteStore({ path: opts.dbPath ?? ':memory:', now }));
  const ttl = opts.sessionTtlMs ?? 8 * 3600_000;
  const maxAge = opts.sessionMaxAgeMs ?? 7 * 24 * 3600_000;
  const sessionEnd = (createdAt: number) => Math.min(now() + ttl, createdAt + maxAge);
  // Renewing writes to the database, so a session is extended at most about once a minute of use.
  const renewAfterMs = Math.min(60_000, ttl / 10);
  const loginThrottle = new LoginThrottle(opts.loginThrottle ?? DEFAULT_LOGIN_THROTTLE, now);
  const maxTextChars = opts.maxTextChars ?? 20_000;
  const S = schemas({ maxTextChars });
  const chatModel = opts.chatModel ?? new EchoChatModel();
  const random = opts.random ?? Math.random;
  const source = (name: string) => opts.candidateSources?.[name] ?? new ImportedCandidates(store, name);

  if (opts.bootstrapAdmin && (await store.users.list()).length === 0) {
    await store.users.create({
      username: opts.bootstrapAdmin.username,
      passwordHash: await hashPassword(opts.bootstrapAdmin.password, opts.passwordCost),
      role: 'admin',
    });
  }

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimitBytes ?? 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  await app.register(cookie);
  app.decorateRequest('session', null);
  app.addContentTypeParser(
    ['application/x-ndjson', 'application/jsonl', 'text/plain'],
    { parseAs: 'string', bodyLimit: opts.importLimitBytes ?? 32 * 1024 * 1024 },
    (_req, body, done) => done(null, body),
  );

  const routes: { method: string; url: string; auth: Access }[] = [];
  app.addHook('onRoute', (route) => {
    if (!route.config?.auth) throw new Error(`route ${route.method} ${route.url} declares no config.auth`);
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routes.push({ method, url: route.url, auth: route.config.auth });
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
  const Idem = { headers: S.IdempotencyHeaders };

  // ------------------------------------------------------------------ public + session

  app.get('/api/health', { config: { auth: 'public' } }, async () => ({ ok: true }));

  app.post('/api/auth/login', { config: { auth: 'public' }, schema: { body: S.Login } }, async (req, reply) => {
    const { username, password } = req.body;
    const waitMs = loginThrottle.retryAfterMs(username, req.ip);
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      reply.header('retry-after', String(seconds));
      fail(429, 'too_many_attempts', `too many failed sign-ins for "${username}"; try again in ${seconds} s`);
    }
    const u = await store.users.forLogin(username);
    const ok = await verifyPassword(password, u?.password_hash ?? DUMMY_HASH);
    if (!u || !ok || u.disabled) {
      loginThrottle.recordFailure(username, req.ip);
      fail(401, 'bad_credentials', 'wrong username or password');
    }
    loginThrottle.recordSuccess(username, req.ip);
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
      maxAge: Math.floor(maxAge / 1000),
    });
    return { user: u.publicUser, csrfToken, expiresAt };
  });

  app.post('/api/auth/logout', { config: { auth: 'any' } }, async (req, reply) => {
    await store.sessions.delete(req.session!.id);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true };
  });

  app.get('/api/me', { config: { auth: 'any' } }, async (req) => ({
    user: user(req),
    csrfToken: req.session!.csrfToken,
    expiresAt: req.session!.expiresAt,
  }));

  // ------------------------------------------------------------------ admin: people and settings

  app.get('/api/admin/users', { config: { auth: 'admin' } }, async () => ({ users: await store.users.list() }));

  app.post('/api/admin/users', { config: { auth: 'admin' }, schema: { body: S.CreateUser } }, async (req, reply) => {
    const b = req.body;
    if (b.role === 'admin' && b.group !== undefined) fail(422, 'invalid', 'admins do not belong to a group');
    const created = await store.users.create({
      username: b.username,
      passwordHash: await hashPassword(b.password, opts.passwordCost),
      role: b.role,
      group: b.group,
    });
    return reply.status(201).send({ user: created });
  });

  app.patch(
    '/api/admin/users/:id',
    { config: { auth: 'admin' }, schema: { params: S.IdParam, body: S.PatchUser } },
    async (req) => {
      const { password, ...rest } = req.body;
      const passwordHash = password === undefined ? undefined : await hashPassword(password, opts.passwordCost);
      return { user: await store.users.update(req.params.id, { ...rest, passwordHash }) };
    },
  );

  app.get('/api/admin/groups', { config: { auth: 'admin' } }, async () => ({ groups: await store.users.listGroups() }));
  app.post('/api/admin/groups', { config: { auth: 'admin' }, schema: { body: S.CreateGroup } }, async (req, reply) =>
    reply.status(201).send({ group: await store.users.createGroup(req.body.name, req.body.split) }),
  );

  app.get('/api/admin/settings', { config: { auth: 'admin' } }, async () => ({ settings: await store.settings.get() }));
  app.put('/api/admin/settings', { config: { auth: 'admin' }, schema: { body: S.Settings } }, async (req) => ({
    settings: await store.settings.update(req.body),
  }));

  app.get('/api/admin/models', { config: { auth: 'admin' } }, async () => {
    const names = new Set([...Object.keys(opts.candidateSources ?? {}), ...(await store.prompts.pooledModels())]);
    return { models: [...names].sort(), chatModel: chatModel.name };
  });

  // ------------------------------------------------------------------ admin: prompts, tasks, gold, screening

  app.get('/api/admin/prompts', { config: { auth: 'admin' }, schema: { querystring: S.ListQuery } }, async (req) =>
    store.prompts.list(req.query),
  );
  app.post('/api/admin/prompts', { config: { auth: 'admin' }, schema: { body: S.AddPrompts } }, async (req, reply) =>
    reply.status(201).send({ ids: await store.prompts.add(req.body.prompts, 'typed') }),
  );

  app.get('/api/admin/tasks', { config: { auth: 'admin' }, schema: { querystring: S.ListQuery } }, async (req) =>
    store.tasks.list(req.query),
  );

  app.post('/api/admin/tasks', { config: { auth: 'admin' }, schema: { body: S.CreateTasks } }, async (req, reply) => {
    const { kind, promptIds, modelA, modelB } = req.body;
    const settings = await store.settings.get();
    if (kind === 'ab' && (!modelA || !modelB || modelA === modelB)) {
      fail(422, 'invalid', 'an A/B task needs two different models: modelA and modelB');
    }
    // Generate everything first (outside the transaction), then store all tasks or none.
    const plans: { promptId: number; responses: { text: string; model: string }[] | null }[] = [];
    const errors: { promptId: number; message: string }[] = [];
    for (const promptId of promptIds) {
      const prompt = await store.prompts.get(promptId);
      if (!prompt) {
        errors.push({ promptId, message: 'no such prompt' });
        continue;
      }
      try {
        if (kind === 'demonstration') plans.push({ promptId, responses: null });
        else if (kind === 'ranking') {
          const texts = await source(settings.candidateModel).generate(prompt.text, settings.k);
          if (texts.length !== settings.k) throw new Error(`source returned ${texts.length} candidates`);
          plans.push({ promptId, responses: texts.map((text) => ({ text, model: settings.candidateModel })) });
        } else {
          const [a] = await source(modelA!).generate(prompt.text, 1);
          const [b] = await source(modelB!).generate(prompt.text, 1);
          plans.push({
            promptId,
            responses: [
              { text: a, model: modelA! },
              { text: b, model: modelB! },
            ],
          });
        }
      } catch (e) {
        errors.push({ promptId, message: (e as Error).message });
      }
    }
    if (errors.length > 0) {
      return reply.status(422).send({ error: 'invalid', message: 'no tasks created', details: errors });
    }
    const ids = await store.tx(async (s) => {
      const out: number[] = [];
      for (let i = 0; i < plans.length; i++) {
        const p = plans[i];
        // Spread the overlapping share evenly over the batch.
        const overlapping = Math.floor((i + 1) * settings.overlap) > Math.floor(i * settings.overlap);
        const setId = p.responses ? await s.prompts.addCandidateSet(p.promptId, p.responses, false) : null;
        out.push(
          await s.tasks.create({
            kind,
            promptId: p.promptId,
            setId,
            target: overlapping ? settings.overlapLabelers : 1,
          }),
        );
      }
      return out;
    });
    return reply.status(201).send({ ids });
  });

  app.get('/api/admin/gold', { config: { auth: 'admin' } }, async () => ({ gold: await store.gold.list() }));
  app.post('/api/admin/gold', { config: { auth: 'admin' }, schema: { body: S.AddGold } }, async (req, reply) => {
    const [rec] = parseJsonl('gold', JSON.stringify(req.body), { maxTextChars }).records;
    if (!rec) {
      const { errors } = parseJsonl('gold', JSON.stringify(req.body), { maxTextChars });
      fail(422, 'invalid', errors[0]?.message ?? 'invalid gold item');
    }
    return reply.status(201).send({ ids: await store.gold.add([rec]) });
  });

  app.get('/api/admin/screening', { config: { auth: 'admin' } }, async () => {
    const settings = await store.settings.get();
    return {
      items: (await store.gold.list()).filter((g) => g.inScreening),
      passThreshold: settings.screeningPassThreshold,
      required: settings.screeningRequired,
    };
  });
  app.put('/api/admin/screening', { config: { auth: 'admin' }, schema: { body: S.SetScreening } }, async (req) => {
    await store.gold.setScreening(req.body.goldIds);
    if (req.body.passThreshold !== undefined) {
      await store.settings.update({ screeningPassThreshold: req.body.passThreshold });
    }
    return { ok: true, goldIds: req.body.goldIds };
  });

  app.get('/api/admin/dashboard', { config: { auth: 'admin' } }, async () => store.stats.dashboard());

  // ------------------------------------------------------------------ admin: import / export

  app.post(
    '/api/admin/import/:kind',
    { config: { auth: 'admin' }, schema: { params: S.KindParam } },
    async (req, reply) => {
      const kind = req.params.kind as ImportKind;
      if (!IMPORT_KINDS.includes(kind)) fail(404, 'not_found', `import kinds: ${IMPORT_KINDS.join(', ')}`);
      if (typeof req.body !== 'string') fail(415, 'unsupported_media_type', 'send JSONL as application/x-ndjson');
      const file = typeof req.headers['x-filename'] === 'string' ? req.headers['x-filename'].slice(0, 200) : 'upload';
      const settings = await store.settings.get();
      const parsed = parseJsonl(
        kind,
        req.body,
        {
          maxTextChars,
          minK: kind === 'rankings' || kind === 'gold' ? 2 : 1,
          maxK: Math.max(9, settings.k),
        },
        file,
      );
      if (parsed.errors.length > 0) {
        return reply.status(422).send({
          error: 'invalid_jsonl',
          message: `${parsed.errors.length} bad line(s); nothing imported`,
          details: parsed.errors.slice(0, 100).map((e) => ({ ...e, text: formatLineError(e) })),
        });
      }
      const r = parsed.records;
      const n = await {
        prompts: () => store.importPrompts(r as never),
        candidates: () => store.importCandidates(r as never),
        demonstrations: () => store.importDemonstrations(r as never),
        rankings: () => store.importRankings(r as never),
        pairwise: () => store.importPairwise(r as never),
        eval: () => store.importEval(r as never),
        gold: () => store.importGold(r as never),
      }[kind]();
      return { imported: n };
    },
  );

  app.get(
    '/api/admin/export/:kind',
    { config: { auth: 'admin' }, schema: { params: S.KindParam, querystring: S.ExportQuery } },
    async (req, reply) => {
      const kind = req.params.kind as ExportKind;
      if (!EXPORT_KINDS.includes(kind)) fail(404, 'not_found', `export kinds: ${EXPORT_KINDS.join(', ')}`);
      const split: Split = req.query.split ?? 'training';
      const include = (req.query.include ?? 'rankings,comparisons').split(',');
      const records = await {
        prompts: () => store.exportPrompts(split),
        demonstrations: () => store.exportDemonstrations(split),
        rankings: () => store.exportRankings(split),
        pairwise: () =>
          store.exportPairwise(split, {
            rankings: include.includes('rankings'),
            comparisons: include.includes('comparisons'),
          }),
        eval: () => store.exportEval(),
      }[kind]();
      reply.header('content-type', 'application/x-ndjson; charset=utf-8');
      reply.header('content-disposition', `attachment; filename="${kind}-${split}.jsonl"`);
      return toJsonl(records as object[]);
    },
  );

  // ------------------------------------------------------------------ labeler: screening and tasks

  app.get('/api/screening', { config: { auth: 'labeler' } }, async (req) => {
    const settings = await store.settings.get();
    const passed = user(req).screeningPassed;
    return {
      required: settings.screeningRequired,
      passed,
      items: passed ? [] : await store.gold.screeningItems(),
    };
  });

  app.post(
    '/api/screening/submit',
    { config: { auth: 'labeler' }, schema: { body: S.ScreeningAnswers, ...Idem } },
    async (req, reply) => {
      const settings = await store.settings.get();
      return idempotent(req, reply, 'screening', (s) =>
        s.gold.submitScreening(user(req).id, req.body.answers, settings.screeningPassThreshold),
      );
    },
  );

  app.post('/api/tasks/next', { config: { auth: 'labeler' } }, async (req) => {
    const u = user(req);
    const settings = await store.settings.get();
    if (settings.screeningRequired && !u.screeningPassed) {
      fail(403, 'screening_required', 'pass the screening test before real tasks');
    }
    const timeoutMs = settings.assignmentTimeoutMinutes * 60_000;
    return { assignment: await store.tasks.next(u, { random, timeoutMs, goldRate: settings.goldRate }) };
  });

  app.get('/api/assignments/:id', { config: { auth: 'labeler' }, schema: { params: S.IdParam } }, async (req) => ({
    assignment: await store.tasks.view(req.params.id, user(req).id),
  }));

  app.post(
    '/api/assignments/:id/submit',
    { config: { auth: 'labeler' }, schema: { params: S.IdParam, body: S.Submit, ...Idem } },
    async (req, reply) => {
      const id = req.params.id;
      const b = req.body;
      return idempotent(req, reply, `assignment:${id}`, async (s) => {
        const view = await s.tasks.view(id, user(req).id);
        const fields = Object.keys(b);
        const need = (allowed: string[], required: string) => {
          if (b[required as keyof typeof b] === undefined || fields.some((f) => !allowed.includes(f))) {
            fail(422, 'invalid', `a ${view.kind} task takes ${allowed.map((a) => `"${a}"`).join(', ')}`);
          }
        };
        if (view.kind === 'demonstration') {
          need(['completion'], 'completion');
          return s.submissions.demonstration(id, user(req).id, b.completion!);
        }
        if (view.kind === 'ranking') {
          need(['ranking', 'likert', 'flags'], 'ranking');
          return s.submissions.ranking(id, user(req).id, {
            ranking: b.ranking!,
            likert: b.likert,
            flags: b.flags as Record<string, number[]> | undefined,
          });
        }
        need(['choice'], 'choice');
        return s.submissions.ab(id, user(req).id, b.choice!);
      });
    },
  );

  // ------------------------------------------------------------------ chat playground

  app.get('/api/conversations', { config: { auth: 'any' } }, async (req) => ({
    conversations: await store.chat.listConversations(user(req).id),
  }));

  app.get('/api/conversations/:id', { config: { auth: 'any' }, schema: { params: S.IdParam } }, async (req) => ({
    conversation: await store.chat.conversation(req.params.id, user(req).id),
  }));

  app.post('/api/chat', { config: { auth: 'any' }, schema: { body: S.Chat } }, async (req, reply) => {
    const u = user(req);
    const { conversationId, content } = req.body;
    const settings = await store.settings.get();
    const { conversation, n } = await store.tx(async (s) => {
      const id = conversationId ?? (await s.chat.createConversation(u.id, conversationTitle(content)));
      const c = await s.chat.conversation(id, u.id);
      if (c.pendingPair) {
        fail(409, 'choice_pending', `choose between the two replies of chat pair ${c.pendingPair.pairId} first`);
      }
      await s.chat.addMessage(id, 'user', content);
      return { conversation: c, n: await s.chat.countReply(u.id) };
    });
    const messages: ChatMessage[] = [...conversation.messages, { role: 'user', content }];
    // The response closing before it finished means the user stopped the reply (or left): stop sampling.
    const ac = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) ac.abort();
    });
    const line = (o: object) => `${JSON.stringify(o)}\n`;
    async function* body(): AsyncGenerator<string> {
      yield line({ type: 'conversation', id: conversation.id, title: conversation.title });
      if (settings.chatCompareEvery > 0 && n % settings.chatCompareEvery === 0) {
        const seeds = [randomInt(1 << 30), randomInt(1 << 30)];
        const [a, b] = await Promise.all(
          seeds.map((seed) => collect(chatModel.stream(messages, { signal: ac.signal, seed }))),
        );
        if (ac.signal.aborted) return; // the user never saw these replies
        const pair = { prompt: chatPrompt(messages), a, b, model: chatModel.name };
        const pairId = await store.chat.openPair(u.id, conversation.id, pair);
        yield line({ type: 'compare', pairId, a, b });
      } else {
        let text = '';
        try {
          for await (const piece of chatModel.stream(messages, { signal: ac.signal })) {
            text += piece;
            yield line({ type: 'token', text: piece });
          }
        } finally {
          // What the user saw is kept, also when they stopped the reply part way.
          if (text) await store.chat.addMessage(conversation.id, 'assistant', text);
        }
      }
      yield line({ type: 'done', reply: n });
    }
    reply.header('content-type', 'application/x-ndjson; charset=utf-8');
    return reply.send(Readable.from(body()));
  });

  app.post(
    '/api/chat/compare',
    { config: { auth: 'any' }, schema: { body: S.ChatCompare, ...Idem } },
    async (req, reply) =>
      idempotent(req, reply, 'chat-compare', async (s) => {
        await s.chat.choosePair(req.body.pairId, user(req).id, req.body.choice);
        return { ok: true, pairId: req.body.pairId };
      }),
  );

  if (opts.reportDir) await registerReport(app as unknown as FastifyInstance, opts.reportDir);
  if (opts.webRoot) await registerStatic(app as unknown as FastifyInstance, opts.webRoot);

  app.addHook('onClose', async () => {
    if (!opts.store) await store.close();
  });
  return { app: app as unknown as FastifyInstance, store, routes };
}
