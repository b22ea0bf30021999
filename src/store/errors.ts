/** Errors that the HTTP layer maps to 4xx responses. */
export type StoreErrorCode = 'not_found' | 'conflict' | 'invalid' | 'forbidden' | 'expired';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

// Errors that mean the database could not be reached or the connection broke (not that a query was wrong): node's
// socket errors, PostgreSQL's connection-exception class 08 and shutdown codes 57P0x, pg's own messages, and SQLite
// staying locked past its busy timeout.
const LOST_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);
const LOST_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|connection error|not queryable/i;

/** Whether `err` says the database is out of reach for now, so a retry later may succeed (HTTP 503). */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = String((err as { code?: unknown }).code ?? '');
  if (LOST_CODES.has(code) || code.startsWith('08') || /^57P0[123]$/.test(code) || code === 'SQLITE_BUSY') return true;
  if (err instanceof AggregateError) return err.errors.some(isUnavailable);
  return LOST_MESSAGES.test(err.message);
}

/**
 * A clear error for a database that cannot be opened at start-up, naming its host (never its password): out of
 * reach, or refusing us (bad password, no such database). Undefined for other errors (a failing migration).
 */
export function openError(err: unknown, url: string): Error | undefined {
  const code = String((err as { code?: unknown })?.code ?? '');
  const refused = /^(28|3D)/.test(code);
  if (!refused && !isUnavailable(err)) return undefined;
  let where = 'the PostgreSQL server';
  try {
    const u = new URL(url);
    const db = decodeURIComponent(u.pathname.slice(1));
    where = `PostgreSQL at ${u.hostname}:${u.port || 5432}${db ? ` (database ${db})` : ''}`;
  } catch {}
  const why = err instanceof Error ? (refused ? err.message : code || err.message) : String(err);
  const hint = refused
    ? 'check the user, password and database in the database URL'
    : 'is the server running and the database URL right?';
  return new Error(`cannot ${refused ? 'open' : 'reach'} ${where}: ${why} — ${hint}`, { cause: err });
}

/** PostgreSQL aborted the transaction because of another writer (deadlock, serialization failure): run it again. */
export const isWriteConflict = (err: unknown) => ['40001', '40P01'].includes(String((err as { code?: unknown })?.code));

/**
 * A prepared statement whose result changed shape since it was prepared (another server's migration added a column):
 * prepared again, it runs (see namedStatements in postgres.ts).
 */
export const isStalePlan = (err: unknown) =>
  (err as { code?: unknown })?.code === '0A000' && /cached plan must not change result type/.test(String(err));

/** A unique constraint refused the write (another request stored the same thing first). */
export const isUniqueViolation = (err: unknown) =>
  ['23505', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY'].includes(
    String((err as { code?: unknown })?.code),
  );
