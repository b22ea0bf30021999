/**
 * The store: the database behind the server, the demo and the trainers' exports, in per-aggregate query modules
 * (users, sessions, settings, prompts, tasks, submissions, gold, chat, idempotency, login failures, exchange, stats,
 * evals, the model registry and the training job queue).
 *
 * Written against Kysely's query builder only; the same queries run on SQLite (one writer at a time) and PostgreSQL
 * (many concurrent writers: several app servers on one database). So no check-then-act may rely on a single
 * writer: a decision and the write it guards are one conditional statement (`... where assigned_count < target`),
 * or the rows are locked first (`lockForUpdate`, PostgreSQL only; SQLite's write lock already serialises them).
 */
import type { Kysely, LogEvent, Transaction } from 'kysely';
import { Chat } from './chat.js';
import { Curation } from './curation.js';
import { isStalePlan, isWriteConflict } from './errors.js';
import { Evals } from './evals.js';
import { Exchange } from './exchange.js';
import { Gold } from './gold.js';
import { Idempotency } from './idempotency.js';
import { Jobs } from './jobs.js';
import type {
  CandidateRecord,
  DemonstrationRecord,
  EvalRecord,
  PairwiseRecord,
  PromptRecord,
  RankingRecord,
} from './jsonl.js';
import { LoginFailures } from './login_failures.js';
import type { DialectName } from './migrations.js';
import { Models } from './models.js';
import { Prompts } from './prompts.js';
import type { Database, Split } from './schema.js';
import { Sessions } from './sessions.js';
import { SettingsStore } from './settings.js';
import { Stats } from './stats.js';
import { Submissions } from './submissions.js';
import { Tasks } from './tasks.js';
import { Users } from './users.js';

/** Sees every statement sent, BEGIN and COMMIT included, with its parameters (tests count and explain them). */
export type QueryListener = (sql: string, parameters: readonly unknown[]) => void;

/** Kysely's `log` option that hands every statement sent (and every one that failed) to `onQuery`. */
export const queryLog = (onQuery?: QueryListener) =>
  onQuery && ((e: LogEvent) => onQuery(e.query.sql, e.query.parameters));

export class Store {
  readonly users = new Users(this);
  readonly sessions = new Sessions(this);
  readonly settings = new SettingsStore(this);
  readonly prompts = new Prompts(this);
  readonly tasks = new Tasks(this);
  readonly submissions = new Submissions(this);
  readonly gold = new Gold(this);
  readonly chat = new Chat(this);
  readonly idempotency = new Idempotency(this);
  readonly loginFailures = new LoginFailures(this);
  readonly exchange = new Exchange(this);
  readonly stats = new Stats(this);
  readonly evals = new Evals(this);
  readonly curation = new Curation(this);
  readonly models = new Models(this);
  readonly jobs = new Jobs(this);

  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: DialectName,
    readonly now: () => number = Date.now,
    /** Frees what the database holds besides its connection (SQLite's checkpoint thread); awaited by `close`. */
    private readonly release: () => Promise<void> = async () => {},
  ) {}

  /**
   * Runs `fn` in one transaction (a nested call reuses the outer one); `fn`'s store and its aggregates use it. A
   * transaction that PostgreSQL aborts for a deadlock, a serialization failure or a statement prepared before another
   * server changed the schema (see namedStatements in postgres.ts) is run again (up to 3 times), so `fn` must only
   * touch the database.
   */
  async tx<T>(fn: (s: Store) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return fn(this);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db
          .transaction()
          .execute((trx: Transaction<Database>) => fn(new Store(trx, this.dialect, this.now)));
      } catch (err) {
        if (attempt >= 3 || !(isWriteConflict(err) || isStalePlan(err))) throw err;
      }
    }
  }

  async close(): Promise<void> {
    await this.db.destroy();
    await this.release();
  }

  // The JSONL interface, what the demo and scripts call on the store itself (the work is in exchange.ts).
  importPrompts = (records: PromptRecord[], source?: string) => this.exchange.importPrompts(records, source);
  importCandidates = (records: CandidateRecord[]) => this.exchange.importCandidates(records);
  importDemonstrations = (records: DemonstrationRecord[]) => this.exchange.importDemonstrations(records);
  importRankings = (records: RankingRecord[]) => this.exchange.importRankings(records);
  importPairwise = (records: PairwiseRecord[]) => this.exchange.importPairwise(records);
  importEval = (records: EvalRecord[]) => this.exchange.importEval(records);
  importGold = (records: RankingRecord[]) => this.exchange.importGold(records);
  exportPrompts = (split: Split) => this.exchange.exportPrompts(split);
  exportDemonstrations = (split: Split) => this.exchange.exportDemonstrations(split);
  exportRankings = (split: Split) => this.exchange.exportRankings(split);
  exportPairwise = (split: Split, include: { rankings: boolean; comparisons: boolean }) =>
    this.exchange.exportPairwise(split, include);
  exportEval = (split: Split) => this.exchange.exportEval(split);
}
