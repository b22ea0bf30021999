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

/** A clear error for a database that cannot be reached at start-up, naming its host (never its password). */
export function unreachable(err: unknown, url: string): Error | undefined {
  if (!isUnavailable(err)) return undefined;
  let where = 'the PostgreSQL server';
  try {
    const u = new URL(url);
    where = `PostgreSQL at ${u.hostname}:${u.port || 5432}${u.pathname.length > 1 ? ` (database ${u.pathname.slice(1)})` : ''}`;
  } catch {}
  const why = err instanceof Error ? (err as { code?: string }).code || err.message : String(err);
  return new Error(`cannot reach ${where}: ${why} — is the server running and the --db URL right?`, { cause: err });
}

/** PostgreSQL aborted the transaction because of another writer (deadlock, serialization failure): run it again. */
export const isWriteConflict = (err: unknown) => ['40001', '40P01'].includes(String((err as { code?: unknown })?.code));

/** A unique constraint refused the write (another request stored the same thing first). */
export const isUniqueViolation = (err: unknown) =>
  ['23505', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY'].includes(
    String((err as { code?: unknown })?.code),
  );
