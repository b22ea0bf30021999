/**
 * The training job queue. An admin enqueues a job (its data snapshot already written); a worker claims the oldest
 * queued job in one statement (PostgreSQL skips rows another worker has locked, SQLite's write lock serialises
 * claims), heartbeats while it trains, and finishes it. Every write of a worker is conditional on it still holding
 * the job (`worker = me and state = 'running'`): a worker whose heartbeat went stale and whose job was re-queued and
 * claimed by another can no longer change it.
 */
import { type Selectable, sql } from 'kysely';
import { Aggregate } from './aggregate.js';
import { StoreError } from './errors.js';
import type { NewModelVersion } from './models.js';
import type { JobKind, JobState, JobsTable } from './schema.js';

export interface JobProgress {
  step: number;
  total: number;
  /** Seconds left at the current rate; null before the rate is known. */
  etaS: number | null;
}

export interface Job {
  id: number;
  kind: JobKind;
  state: JobState;
  baseModelId: number;
  rewardModelId: number | null;
  config: Record<string, unknown>;
  dir: string;
  dataHash: string;
  dataCount: number;
  ptx: string | null;
  attempts: number;
  maxAttempts: number;
  worker: string | null;
  heartbeatAt: number | null;
  cancelRequested: boolean;
  progress: JobProgress | null;
  /** metrics.jsonl rows so far (thinned by the worker to a few hundred). */
  metrics: Record<string, unknown>[];
  log: string;
  error: string | null;
  modelId: number | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

export type JobSummary = Omit<Job, 'metrics' | 'log'>;

export interface NewJob {
  kind: JobKind;
  baseModelId: number;
  rewardModelId?: number | null;
  config: object;
  dataHash: string;
  dataCount: number;
  ptx?: string | null;
  maxAttempts?: number;
  createdBy?: number | null;
}

/** What the worker reports with each heartbeat. */
export interface JobReport {
  progress?: JobProgress | null;
  metrics?: Record<string, unknown>[];
  log?: string;
}

export type JobOutcome =
  /**
   * `derived`: further versions the run wrote beside its model (PPO's moving average of the policy's weights),
   * registered with the model as their parent.
   */
  | { state: 'done'; model: NewModelVersion; derived?: NewModelVersion[] }
  | { state: 'failed'; error: string }
  | { state: 'cancelled' };

const DEFAULT_MAX_ATTEMPTS = 3;
const SUMMARY_COLUMNS = [
  'id',
  'kind',
  'state',
  'base_model_id',
  'reward_model_id',
  'config',
  'dir',
  'data_hash',
  'data_count',
  'ptx',
  'attempts',
  'max_attempts',
  'worker',
  'heartbeat_at',
  'cancel_requested',
  'progress',
  'error',
  'model_id',
  'created_by',
  'created_at',
  'started_at',
  'finished_at',
] as const;

function toJob(r: Selectable<JobsTable>): Job {
  return {
    id: r.id,
    kind: r.kind,
    state: r.state,
    baseModelId: r.base_model_id,
    rewardModelId: r.reward_model_id,
    config: JSON.parse(r.config),
    dir: r.dir,
    dataHash: r.data_hash,
    dataCount: r.data_count,
    ptx: r.ptx,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    worker: r.worker,
    heartbeatAt: r.heartbeat_at === null ? null : Number(r.heartbeat_at),
    cancelRequested: r.cancel_requested === 1,
    progress: r.progress === null ? null : JSON.parse(r.progress),
    metrics: r.metrics === null ? [] : JSON.parse(r.metrics),
    log: r.log,
    error: r.error,
    modelId: r.model_id,
    createdAt: Number(r.created_at),
    startedAt: r.started_at === null ? null : Number(r.started_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
  };
}

export class Jobs extends Aggregate {
  /**
   * Queues a job. `writeSnapshot(id)` writes the job folder (data snapshot, config) and returns its path; it runs
   * inside the transaction, so a folder that cannot be written leaves no job behind.
   */
  async enqueue(j: NewJob, writeSnapshot: (id: number) => string): Promise<Job> {
    return this.s.tx(async (s) => {
      await s.models.get(j.baseModelId);
      if (j.rewardModelId != null) await s.models.get(j.rewardModelId);
      const { id } = await s.db
        .insertInto('jobs')
        .values({
          kind: j.kind,
          state: 'queued',
          base_model_id: j.baseModelId,
          reward_model_id: j.rewardModelId ?? null,
          config: JSON.stringify(j.config),
          dir: '',
          data_hash: j.dataHash,
          data_count: j.dataCount,
          ptx: j.ptx ?? null,
          max_attempts: j.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
          created_by: j.createdBy ?? null,
          created_at: this.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await s.db
        .updateTable('jobs')
        .set({ dir: writeSnapshot(id) })
        .where('id', '=', id)
        .execute();
      return s.jobs.get(id);
    });
  }

  async get(id: number): Promise<Job> {
    const row = await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new StoreError('not_found', `job ${id} not found`);
    return toJob(row);
  }

  /** The newest jobs first, without their metrics and log (the job list; `get` has them). */
  async list(limit = 100): Promise<JobSummary[]> {
    const rows = await this.db.selectFrom('jobs').select(SUMMARY_COLUMNS).orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => {
      const { metrics, log, ...summary } = toJob({ ...r, metrics: null, log: '' });
      return summary;
    });
  }

  /** Claims the oldest queued job for `worker` (counting an attempt), or returns null when none is queued. */
  async claim(worker: string): Promise<Job | null> {
    let oldest = this.db.selectFrom('jobs').select('id').where('state', '=', 'queued').orderBy('id').limit(sql.lit(1));
    // Two workers polling at once: each skips the row the other has locked instead of waiting for it.
    if (this.s.dialect === 'postgres') oldest = oldest.forUpdate().skipLocked();
    const now = this.now();
    const row = await this.db
      .updateTable('jobs')
      .set((eb) => ({
        state: 'running',
        worker,
        heartbeat_at: now,
        started_at: now,
        attempts: eb('attempts', '+', 1),
      }))
      .where('id', 'in', oldest)
      .where('state', '=', 'queued')
      .returningAll()
      .executeTakeFirst();
    return row ? toJob(row) : null;
  }

  /**
   * Records the worker's progress and renews its hold on the job. Returns whether it still holds the job and
   * whether an admin asked to cancel it.
   */
  async heartbeat(id: number, worker: string, report: JobReport = {}): Promise<{ held: boolean; cancel: boolean }> {
    const row = await this.db
      .updateTable('jobs')
      .set({
        heartbeat_at: this.now(),
        ...(report.progress !== undefined ? { progress: JSON.stringify(report.progress) } : {}),
        ...(report.metrics !== undefined ? { metrics: JSON.stringify(report.metrics) } : {}),
        ...(report.log !== undefined ? { log: report.log } : {}),
      })
      .where('id', '=', id)
      .where('worker', '=', worker)
      .where('state', '=', 'running')
      .returning('cancel_requested')
      .executeTakeFirst();
    return { held: row !== undefined, cancel: row?.cancel_requested === 1 };
  }

  /**
   * Ends a job the worker holds: done (its output registered as a new model version, in the same transaction),
   * failed with an error, or cancelled. Returns false (and changes nothing) when the worker no longer holds it.
   */
  async finish(id: number, worker: string, outcome: JobOutcome, report: JobReport = {}): Promise<boolean> {
    return this.s.tx(async (s) => {
      const held = await s.db
        .selectFrom('jobs')
        .select('id')
        .where('id', '=', id)
        .where('worker', '=', worker)
        .where('state', '=', 'running')
        .executeTakeFirst();
      if (!held) return false;
      const modelId =
        outcome.state === 'done' ? (await s.models.register(outcome.model, { suffix: true })).model.id : null;
      for (const m of outcome.state === 'done' ? (outcome.derived ?? []) : []) {
        await s.models.register({ ...m, parentId: modelId }, { suffix: true });
      }
      await s.db
        .updateTable('jobs')
        .set({
          state: outcome.state,
          finished_at: this.now(),
          heartbeat_at: this.now(),
          model_id: modelId,
          error: outcome.state === 'failed' ? outcome.error : null,
          ...(report.progress !== undefined ? { progress: JSON.stringify(report.progress) } : {}),
          ...(report.metrics !== undefined ? { metrics: JSON.stringify(report.metrics) } : {}),
          ...(report.log !== undefined ? { log: report.log } : {}),
        })
        .where('id', '=', id)
        .execute();
      return true;
    });
  }

  /** Gives a job back to the queue (its worker is shutting down): the next claim resumes it. */
  async release(id: number, worker: string, report: JobReport = {}): Promise<boolean> {
    const r = await this.db
      .updateTable('jobs')
      .set({
        state: 'queued',
        worker: null,
        ...(report.progress !== undefined ? { progress: JSON.stringify(report.progress) } : {}),
        ...(report.metrics !== undefined ? { metrics: JSON.stringify(report.metrics) } : {}),
        ...(report.log !== undefined ? { log: report.log } : {}),
      })
      .where('id', '=', id)
      .where('worker', '=', worker)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** A queued job is cancelled at once; a running one is asked to stop (its worker checkpoints and ends it). */
  async cancel(id: number): Promise<Job> {
    const job = await this.get(id);
    if (job.state === 'queued') {
      await this.db
        .updateTable('jobs')
        .set({ state: 'cancelled', finished_at: this.now() })
        .where('id', '=', id)
        .where('state', '=', 'queued')
        .execute();
    } else if (job.state === 'running') {
      await this.db.updateTable('jobs').set({ cancel_requested: 1 }).where('id', '=', id).execute();
    } else {
      throw new StoreError('conflict', `job ${id} is ${job.state}; only a queued or running job can be cancelled`);
    }
    const after = await this.get(id);
    // Claimed between the read and the write: ask its worker instead.
    if (after.state === 'running' && !after.cancelRequested) return this.cancel(id);
    return after;
  }

  /**
   * Jobs whose worker has not heartbeated since `staleBefore` (it died, or lost the machine): back to the queue, so
   * that the next claim resumes them from their last checkpoint, or failed once they have used all their attempts.
   * Returns the ids re-queued and failed.
   */
  async reclaimStale(staleBefore: number): Promise<{ requeued: number[]; failed: number[] }> {
    const stale = await this.db
      .selectFrom('jobs')
      .select(['id', 'worker', 'attempts', 'max_attempts', 'cancel_requested'])
      .where('state', '=', 'running')
      .where('heartbeat_at', '<', staleBefore)
      .execute();
    const requeued: number[] = [];
    const failed: number[] = [];
    for (const j of stale) {
      const giveUp = j.attempts >= j.max_attempts || j.cancel_requested === 1;
      const r = await this.db
        .updateTable('jobs')
        .set(
          giveUp
            ? {
                state: j.cancel_requested === 1 ? 'cancelled' : 'failed',
                finished_at: this.now(),
                error: `worker ${j.worker} stopped heartbeating (attempt ${j.attempts} of ${j.max_attempts})`,
              }
            : { state: 'queued', worker: null, cancel_requested: 0 },
        )
        // Only if nobody touched it meanwhile (its worker came back, or another worker reclaimed it first).
        .where('id', '=', j.id)
        .where('state', '=', 'running')
        .where('heartbeat_at', '<', staleBefore)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) continue;
      (giveUp ? failed : requeued).push(j.id);
    }
    return { requeued, failed };
  }
}
