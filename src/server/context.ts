/** What every route module gets: the app, the store, the schemas, the options and the shared request helpers. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { CandidateSource, PublicUser, SessionWithUser, Settings, Store } from '../store/index.js';
import type { ChatModel } from './chat.js';
import type { LoginThrottle, LoginThrottleOptions } from './login_throttle.js';
import type { SamplerPool } from './sampler_pool.js';
import type { Schemas } from './schemas.js';

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
  /** A SQLite file, or a `postgres://` URL (several servers may share one PostgreSQL database). */
  dbPath?: string;
  /** Clock for sessions and timestamps (tests move it to expire sessions). */
  now?: () => number;
  /** A session ends after this long unused; each use moves its end this far ahead (sliding renewal). */
  sessionTtlMs?: number;
  /** ... but never beyond this long after sign-in, however busy. */
  sessionMaxAgeMs?: number;
  /** Failed sign-ins allowed per account and client address before 429 (counted in the database). */
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
  /**
   * Model versions served side by side (each a candidate source under its name, and a chat model the admin may
   * pick in the settings); the first answers chat when no `chatModel` is given and the admin picked none.
   */
  servedModels?: SamplerPool;
  /** scrypt N for new password hashes. */
  passwordCost?: number;
  /** Set the cookie's Secure flag (behind HTTPS). */
  secureCookies?: boolean;
  logger?: boolean;
  /** Creates this admin when no user exists yet. */
  bootstrapAdmin?: { username: string; password: string };
  /** Also when users exist: give `bootstrapAdmin` its password and enable it (recovers a locked-out admin). */
  resetAdmin?: boolean;
  /**
   * Behind a reverse proxy: which proxies to believe about the client address (X-Forwarded-For), as Fastify's
   * `trustProxy` (true, or the proxies' addresses/CIDRs). The address is what login throttling counts.
   */
  trustProxy?: boolean | string | string[];
  random?: () => number;
  /** Folder of the built web UI (web/dist) to serve at `/`, with SPA fallback; no UI when absent. */
  webRoot?: string;
  /**
   * Where training jobs' folders go (data snapshot, checkpoints, the output model): the folder the workers'
   * `--models` names, and what the registry's relative model paths are relative to. Without it, jobs cannot be queued.
   */
  jobsDir?: string;
  /** A run's report folder (`instructkit demo` writes DIR/report) to serve read-only at `/report/`. */
  reportDir?: string;
}

export type Api = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface RouteContext {
  app: Api;
  store: Store;
  opts: ServerOptions;
  S: Schemas;
  now: () => number;
  maxTextChars: number;
  /** The default chat model (the admin's `chatModels` setting may name served versions instead). */
  chatModel: ChatModel;
  /** The chat models the settings pick: the served versions named in `chatModels`, else the default one. */
  chatModels: (chosen: readonly string[]) => ChatModel[];
  /** Names of every model that can produce candidates or answer chat (served versions, configured sources). */
  modelNames: () => Promise<string[]>;
  /** Makes every causal-LM version in the model registry servable (a no-op without `servedModels`). */
  refreshModels: () => Promise<void>;
  random: () => number;
  loginThrottle: LoginThrottle;
  /** The session cookie's lifetime in the browser: the longest a session may live. */
  maxAgeMs: number;
  /** When a session that is used now ends (sliding, capped by its age). */
  sessionEnd: (createdAt: number) => number;
  /** The candidate source with this name (imported candidates when none is configured under it). */
  source: (name: string) => CandidateSource;
  /** The signed-in user (routes with `auth` other than public). */
  user: (req: FastifyRequest) => PublicUser;
  /** The settings at the revision this request's session read: reused by the process until it changes. */
  settings: (req: FastifyRequest) => Promise<Settings>;
  /** Runs a submission once per Idempotency-Key (see Idempotency.run). */
  idempotent: <T>(req: FastifyRequest, reply: FastifyReply, route: string, fn: (s: Store) => Promise<T>) => Promise<T>;
}

export const SESSION_COOKIE = 'ik_session';

/** Ends the request with this status and `{error, message}`. */
export function fail(status: number, error: string, message: string): never {
  throw Object.assign(new Error(message), { statusCode: status, code: error, expose: true });
}
