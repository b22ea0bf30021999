/**
 * The training worker: claims queued jobs one at a time and runs each as `instructkit <kind> ... --config` in a
 * child process — the CLI's own entry points, so a job trains, checkpoints and resumes exactly as the command does.
 * While the child trains, this process's event loop is free: it heartbeats (progress, metrics.jsonl rows, the log's
 * tail), and stops the child when an admin cancels (SIGTERM: the loop writes a checkpoint and exits) or when the job
 * was taken from it. The child gets SIGKILL if this process dies (Linux's parent-death signal, via util-linux's
 * `setpriv`), so a killed worker leaves no trainer writing to the job folder; another worker then finds the job's
 * heartbeat stale, re-queues it and resumes it from its last checkpoint.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { hostname, setPriority } from 'node:os';
import { join, resolve } from 'node:path';
import { folderKind, parameterCount } from '../models/index.js';
import type { Job, JobProgress, JobReport, Store } from '../store/index.js';
import { MetricsFollower } from '../train/metrics.js';
import { JOB_KINDS } from './kinds.js';
import { registryPath } from './model_paths.js';

export interface WorkerOptions {
  store: Store;
  /** The folder job folders are in (`--models`): the same shared folder the API server snapshots into. */
  modelsDir: string;
  /** This worker's name in the job records (default host:pid). */
  id?: string;
  /** How often to look for a queued job when idle, and to heartbeat while training (ms). */
  pollMs?: number;
  heartbeatMs?: number;
  /** A running job whose heartbeat is older than this is re-queued (or failed after its attempts). */
  staleAfterMs?: number;
  /** Lines for the worker's own log (default stderr). */
  log?: (line: string) => void;
}

const CLI = join(import.meta.dirname, '..', 'cli', 'main.js');
const LOG_TAIL_CHARS = 16_000;
const METRIC_ROWS = 300;
/** The trainer's niceness (0 normal, 19 lowest). */
const TRAINER_NICE = 10;

let setprivOk: boolean | undefined;
function hasSetpriv(): boolean {
  if (setprivOk === undefined) {
    try {
      execFileSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore' });
      setprivOk = true;
    } catch {
      setprivOk = false;
    }
  }
  return setprivOk;
}

/** At most `n` rows, evenly spaced, always keeping the last (the loss curve's shape at any length). */
function thin<T>(rows: T[], n: number): T[] {
  if (rows.length <= n) return rows;
  const out: T[] = [];
  for (let i = 0; i < n - 1; i++) out.push(rows[Math.floor((i * (rows.length - 1)) / (n - 1))]);
  out.push(rows[rows.length - 1]);
  return out;
}

/** Each metric's latest value (eval/ metrics come only every epoch): the model's final metrics. */
function finalMetrics(rows: Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (k !== 'time' && k !== 'stage') out[k] = v;
  return out;
}

export class TrainingWorker {
  readonly id: string;
  private stopping = false;
  private child: ChildProcess | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly o: WorkerOptions) {
    this.id = o.id ?? `${hostname()}:${process.pid}`;
  }

  private say(line: string) {
    (this.o.log ?? ((l: string) => console.error(l)))(`worker ${this.id}: ${line}`);
  }

  /** Runs jobs until `stop()`. */
  async run(): Promise<void> {
    let idle = false;
    while (!this.stopping) {
      // A database out of reach for a while (restarting, a lost connection) is waited out, not fatal.
      const job = await this.runOnce().catch((e: Error) => {
        this.say(`cannot reach the job queue (${e.message}); trying again`);
        return null;
      });
      // Said once per idle spell, so that a quiet worker is seen to be waiting, not stuck.
      if (!job && !idle && !this.stopping)
        this.say(`no job queued; looking again every ${(this.o.pollMs ?? 2000) / 1000} s`);
      idle = !job;
      if (!job && !this.stopping)
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, this.o.pollMs ?? 2000);
        });
    }
  }

  /**
   * Stops after the current job: its trainer gets SIGTERM (writes a checkpoint and exits) and the job goes back to
   * the queue at once, for this or another worker to resume.
   */
  stop(): void {
    this.stopping = true;
    this.child?.kill('SIGTERM');
    this.wake?.();
  }

  /** Re-queues stale jobs, claims one and runs it to its end; null when none was queued. */
  async runOnce(): Promise<Job | null> {
    const { store } = this.o;
    const stale = await store.jobs.reclaimStale(store.now() - (this.o.staleAfterMs ?? 30_000));
    for (const id of stale.requeued) this.say(`job ${id}: its worker stopped heartbeating; re-queued`);
    for (const id of stale.failed) this.say(`job ${id}: its worker stopped heartbeating; no attempts left`);
    const job = await store.jobs.claim(this.id);
    if (!job) return null;
    this.say(`job ${job.id} (${job.kind}), attempt ${job.attempts} of ${job.maxAttempts}`);
    try {
      await this.train(job);
    } catch (e) {
      await store.jobs.finish(job.id, this.id, { state: 'failed', error: (e as Error).message });
    }
    return store.jobs.get(job.id);
  }

  private async train(job: Job): Promise<void> {
    const { store } = this.o;
    // The trainer's output folder: as the trainer is given it (relative, see below) and on this machine.
    const outArg = join(job.dir, 'model');
    const out = resolve(this.o.modelsDir, outArg);
    const kind = JOB_KINDS[job.kind];
    const base = await store.models.get(job.baseModelId);
    const reward = job.rewardModelId === null ? null : await store.models.get(job.rewardModelId);
    // The trainer runs in the models folder, given the paths inside it relative to it (the registry's and the job's
    // own), so that its run records the same inputs on every machine: a worker that mounts the folder elsewhere can
    // resume it.
    const args = kind.args({
      base: base.path,
      reward: reward?.path ?? null,
      data: join(job.dir, 'data.jsonl'),
      config: join(job.dir, 'config.json'),
      out: outArg,
      ptx: job.ptx,
    });
    // A folder of an earlier attempt: continue from its newest checkpoint (the loop starts afresh if it has none).
    if (existsSync(out)) args.push('--resume');

    let log = job.attempts > 1 ? `${job.log}\n--- attempt ${job.attempts} (worker ${this.id})\n` : '';
    let progress: JobProgress | null = job.progress;
    let first: { step: number; at: number } | null = null;
    const follower = new MetricsFollower(join(out, 'metrics.jsonl'));
    const metrics = () => follower.read() as Record<string, unknown>[];
    const report = (): JobReport => {
      const rows = metrics();
      const step = Number(rows.at(-1)?.step ?? progress?.step ?? 0);
      if (progress) {
        first ??= { step, at: Date.now() };
        const rate = (step - first.step) / ((Date.now() - first.at) / 1000);
        progress = { step, total: progress.total, etaS: rate > 0 ? (progress.total - step) / rate : null };
      }
      return { progress, metrics: thin(rows, METRIC_ROWS), log: log.slice(-LOG_TAIL_CHARS) };
    };

    const [cmd, ...cmdArgs] = hasSetpriv()
      ? ['setpriv', '--pdeathsig', 'KILL', process.execPath, CLI, ...args]
      : [process.execPath, CLI, ...args];
    // A worker often shares its machine with an app server: the trainer yields the cores to it (lower priority, and
    // OpenMP threads that sleep soon instead of spinning, as the demo sets for the same reason).
    const env = { ...process.env, GOMP_SPINCOUNT: process.env.GOMP_SPINCOUNT ?? '1000' };
    const child = spawn(cmd, cmdArgs, { cwd: this.o.modelsDir, stdio: ['ignore', 'pipe', 'pipe'], env });
    if (child.pid !== undefined) setPriority(child.pid, TRAINER_NICE);
    this.child = child;
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      log = (log + text).slice(-4 * LOG_TAIL_CHARS);
      // The loop's progress line on a pipe: "<stage> 12/40 | 9s elapsed, ETA 21s | ...".
      for (const m of text.matchAll(/ (\d+)\/(\d+) \| \d+s elapsed/g)) {
        progress = { step: Number(m[1]), total: Number(m[2]), etaS: progress?.etaS ?? null };
      }
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.on('close', (code, signal) => done({ code, signal })),
    );
    let cancelled = false;
    let lost = false;
    let lastBeat = Date.now();
    const staleAfter = this.o.staleAfterMs ?? 30_000;
    const beat = setInterval(() => {
      // Unable to renew its hold for half the stale time, this worker stops the trainer itself: by the time another
      // worker may take the job over, no trainer of ours is left writing to its folder.
      if (!lost && Date.now() - lastBeat > staleAfter / 2) {
        lost = true;
        this.say(
          `job ${job.id}: no heartbeat for ${Math.round((Date.now() - lastBeat) / 1000)} s; stopping its trainer`,
        );
        child.kill('SIGKILL');
      }
      void store.jobs.heartbeat(job.id, this.id, report()).then(
        (hb) => {
          if (hb.held) lastBeat = Date.now();
          if (!hb.held && !lost) {
            lost = true;
            this.say(`job ${job.id}: no longer ours (re-queued after a stale heartbeat); stopping its trainer`);
            child.kill('SIGKILL');
          } else if (hb.cancel && !cancelled) {
            cancelled = true;
            this.say(`job ${job.id}: cancelled by an admin; stopping after a checkpoint`);
            child.kill('SIGTERM');
          }
        },
        (e: Error) => this.say(`job ${job.id}: heartbeat failed (${e.message})`),
      );
    }, this.o.heartbeatMs ?? 2000);
    const { code, signal } = await exited.finally(() => {
      clearInterval(beat);
      this.child = null;
    });
    if (lost) return;
    const final = report();
    if (cancelled) {
      await store.jobs.finish(job.id, this.id, { state: 'cancelled' }, final);
      return;
    }
    if (this.stopping && code !== 0) {
      await store.jobs.release(job.id, this.id, final);
      this.say(`job ${job.id}: stopped with the worker; back in the queue`);
      return;
    }
    if (code !== 0) {
      const why = signal ? `killed by ${signal}` : `exited with code ${code}`;
      const last = log.trim().split('\n').slice(-3).join('\n');
      await store.jobs.finish(job.id, this.id, { state: 'failed', error: `trainer ${why}: ${last}` }, final);
      return;
    }
    // A LoRA run leaves adapters only in OUT; the registry serves full models, so it takes OUT/merged (merge: true).
    const fullModel = (dir: string) => (existsSync(join(dir, 'config.json')) ? dir : join(dir, 'merged'));
    const path = fullModel(out);
    if (!existsSync(join(path, 'config.json'))) {
      const error = `${out} holds LoRA adapters only: the registry needs a full model; queue it again with merge: true`;
      await store.jobs.finish(job.id, this.id, { state: 'failed', error }, final);
      return;
    }
    const model = {
      name: `${job.kind}-${job.id}`,
      path: registryPath(this.o.modelsDir, path),
      kind: job.kind,
      head: folderKind(path),
      parentId: job.baseModelId,
      jobId: job.id,
      dataHash: job.dataHash,
      config: job.config,
      metrics: finalMetrics(metrics()),
      params: parameterCount(path),
    };
    // PPO also writes the moving average of the policy's weights (OUT/ema): the model the paper evaluates, so it is
    // a version of its own (NAME-ema, its parent the policy), to be served, compared and trained from.
    const ema = fullModel(join(out, 'ema'));
    const derived = existsSync(join(ema, 'config.json'))
      ? [
          {
            ...model,
            name: `${model.name}-ema`,
            path: registryPath(this.o.modelsDir, ema),
            head: folderKind(ema),
            params: parameterCount(ema),
          },
        ]
      : [];
    if (final.progress) final.progress = { ...final.progress, step: final.progress.total, etaS: 0 };
    await store.jobs.finish(job.id, this.id, { state: 'done', model, derived }, final);
    this.say(`job ${job.id}: done; registered ${[model, ...derived].map((m) => m.path).join(' and ')}`);
  }
}
