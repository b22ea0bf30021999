/**
 * Test helpers: a server on a fresh database (SQLite in memory, or a new PostgreSQL schema: see db.ts) with a movable
 * clock, and a cookie/CSRF-aware client.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createServer, type ServerOptions } from '../../src/server/index.js';
import { testDb } from './db.js';

export const ADMIN = { username: 'admin', password: 'admin-password' };

export async function setup(extra: ServerOptions = {}) {
  const clock = { t: 1_700_000_000_000 };
  const { app, store, routes } = await createServer({
    dbPath: extra.store ? undefined : await testDb(),
    now: () => clock.t,
    passwordCost: 1024,
    bootstrapAdmin: ADMIN,
    maxTextChars: 1000,
    ...extra,
  });
  const admin = new Client(app);
  await admin.login(ADMIN.username, ADMIN.password);
  return { app, store, routes, clock, admin };
}

export interface Res {
  status: number;
  body: unknown;
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  json: any;
  headers: LightMyRequestResponse['headers'];
  raw: LightMyRequestResponse;
}

export class Client {
  token = '';
  csrf = '';
  constructor(readonly app: FastifyInstance) {}

  async login(username: string, password: string): Promise<Res> {
    const r = await this.req('POST', '/api/auth/login', { username, password });
    if (r.status === 200) {
      const c = r.raw.cookies.find((x) => x.name === 'ik_session');
      this.token = c!.value;
      this.csrf = r.json.csrfToken;
    }
    return r;
  }

  async req(
    method: string,
    url: string,
    payload?: unknown,
    opts: { csrf?: boolean; headers?: Record<string, string> } = {},
  ): Promise<Res> {
    const headers: Record<string, string> = { ...opts.headers };
    if (this.token) headers.cookie = `ik_session=${this.token}`;
    if (this.csrf && opts.csrf !== false && !headers['x-csrf-token']) headers['x-csrf-token'] = this.csrf;
    const raw = await this.app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(payload === undefined ? {} : typeof payload === 'string' ? { payload } : { payload: payload as object }),
    });
    let json: unknown;
    try {
      json = raw.json();
    } catch {
      json = undefined;
    }
    return { status: raw.statusCode, body: raw.body, json, headers: raw.headers, raw };
  }

  get = (url: string) => this.req('GET', url);
  post = (url: string, body?: unknown, headers?: Record<string, string>) =>
    this.req('POST', url, body ?? {}, { headers });
}

let keyN = 0;
export const idem = () => ({ 'idempotency-key': `test-key-${++keyN}-${Date.now()}` });

/** Creates a labeler (screening passed unless told otherwise) and returns a signed-in client. */
export async function labeler(
  app: FastifyInstance,
  admin: Client,
  username: string,
  group = 'training',
  passed = true,
): Promise<Client & { id: number }> {
  const r = await admin.post('/api/admin/users', { username, password: 'labeler-pass', role: 'labeler', group });
  if (r.status !== 201) throw new Error(`create labeler: ${r.status} ${r.body}`);
  const id = r.json.user.id as number;
  if (passed) await admin.req('PATCH', `/api/admin/users/${id}`, { screeningPassed: true });
  const c = new Client(app);
  await c.login(username, 'labeler-pass');
  return Object.assign(c, { id });
}

export const jsonl = (rows: object[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
export const NDJSON = { 'content-type': 'application/x-ndjson' };
