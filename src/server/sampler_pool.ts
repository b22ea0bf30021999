/**
 * Several model versions served side by side: a sampling worker per version, started on first use, with the
 * total weight memory held under a budget. To make room it stops the least recently used worker that has no
 * request in flight; when every loaded one is busy, a new load waits until one is released (never evicting
 * in-flight work). Each version is reached as a ChatModel and a CandidateSource that hold the worker for the
 * length of one request, so the sampler's streaming, cancellation and context truncation are unchanged.
 */
import { totalmem } from 'node:os';
import { residentBytes } from '../models/index.js';
import type { CandidateSource } from '../store/index.js';
import type { ChatMessage, ChatModel, ChatStreamOptions } from './chat.js';
import { ModelSampler, type SamplerSettings } from './sampler.js';

/** What the pool runs per version (a ModelSampler; tests pass fakes). */
export interface PooledSampler extends ChatModel, CandidateSource {
  close(): Promise<unknown>;
}

export interface SamplerPoolOptions {
  /** Total bytes of weights the pool may hold loaded at once (default: `defaultServeMemory()`). */
  budgetBytes?: number;
  /** Sampling settings of every worker (token limit, temperature, top-p). */
  settings?: Partial<Omit<SamplerSettings, 'dir'>>;
  /** Starts a version's sampler (default: a ModelSampler worker on its folder). */
  start?: (name: string, dir: string) => Promise<PooledSampler>;
  /** Bytes a version takes once loaded (default: its parameter count × bytes per weight, from the headers). */
  estimate?: (dir: string) => number;
}

/** One served version as the admin sees it. */
export interface PoolStatus {
  name: string;
  dir: string;
  bytes: number;
  loaded: boolean;
  inFlight: number;
}

interface Entry {
  name: string;
  dir: string;
  bytes: number;
  /** The worker, while it is loading or loaded (unset once evicted). */
  sampler?: Promise<PooledSampler>;
  /** Counted against the budget: set from the moment a load is decided until its worker is told to stop. */
  reserved: boolean;
  /** Requests holding (or waiting for) this version: it is never evicted while this is above 0. */
  inFlight: number;
  lastUsed: number;
}

/** Half the machine's memory: room for the API process, the tensor pool's idle buffers and the KV caches. */
export function defaultServeMemory(): number {
  return Math.floor(totalmem() / 2);
}

/** Parses `--serve-memory`: bytes, or a number with a unit (512M, 6G, 1.5GiB). */
export function parseMemory(text: string, flag = '--serve-memory'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m) throw new Error(`${flag}: "${text}" is not a size; write bytes or e.g. 512M, 6G`);
  const scale = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase() as '' | 'k'];
  const bytes = Math.floor(Number(m[1]) * scale);
  if (bytes <= 0) throw new Error(`${flag}: must be more than 0`);
  return bytes;
}

const GiB = 2 ** 30;
const size = (b: number) => (b >= GiB ? `${(b / GiB).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);

export class SamplerPool {
  readonly budgetBytes: number;
  private readonly entries = new Map<string, Entry>();
  private readonly startSampler: (name: string, dir: string) => Promise<PooledSampler>;
  private readonly estimate: (dir: string) => number;
  /** Loads waiting for a busy version to be released. */
  private waiters: (() => void)[] = [];
  private clock = 0;
  /** Bytes of workers told to stop that have not stopped yet (a new load of the same version counts apart). */
  private stoppingBytes = 0;
  private closed = false;

  constructor(opts: SamplerPoolOptions = {}) {
    this.budgetBytes = opts.budgetBytes ?? defaultServeMemory();
    const settings = opts.settings ?? {};
    this.startSampler = opts.start ?? ((name, dir) => ModelSampler.start({ ...settings, dir }, name));
    // A checkpoint stored in bf16 is served in bf16 (the worker loads with dtype auto).
    this.estimate = opts.estimate ?? ((dir) => residentBytes(dir, 'auto'));
  }

  /**
   * Makes a version servable under `name` (nothing loads until its first request). The folder is checked now: a
   * folder that is not a model, or one larger than the whole budget, is refused here rather than at first use.
   */
  add(name: string, dir: string): void {
    const known = this.entries.get(name);
    if (known) {
      if (known.dir === dir) return;
      throw new Error(`model "${name}" is already served from ${known.dir}; give ${dir} another name`);
    }
    const bytes = this.bytesFor(name, dir);
    this.entries.set(name, { name, dir, bytes, reserved: false, inFlight: 0, lastUsed: 0 });
  }

  /** The bytes a version would take; throws (naming it and the flag) when it can never fit the budget. */
  bytesFor(name: string, dir: string): number {
    const bytes = this.estimate(dir);
    if (bytes > this.budgetBytes) {
      throw new Error(
        `model "${name}" (${dir}) needs ${size(bytes)} of weights, more than the serving budget of ` +
          `${size(this.budgetBytes)}: raise --serve-memory`,
      );
    }
    return bytes;
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  status(): PoolStatus[] {
    return [...this.entries.values()].map((e) => ({
      name: e.name,
      dir: e.dir,
      bytes: e.bytes,
      loaded: e.sampler !== undefined,
      inFlight: e.inFlight,
    }));
  }

  /** Bytes counted against the budget now (loading, loaded and still-stopping workers). */
  usedBytes(): number {
    let used = this.stoppingBytes;
    for (const e of this.entries.values()) if (e.reserved) used += e.bytes;
    return used;
  }

  /** The version as a chat model: each reply holds its worker until the stream ends (or is stopped). */
  chatModel(name: string): ChatModel {
    this.entry(name);
    const pool = this;
    return {
      name,
      async *stream(messages: readonly ChatMessage[], opts: ChatStreamOptions) {
        const { sampler, release } = await pool.lease(name);
        try {
          yield* sampler.stream(messages, opts);
        } finally {
          release();
        }
      },
    };
  }

  /** The version as a source of ranking / A/B candidates. */
  candidateSource(name: string): CandidateSource {
    this.entry(name);
    return {
      generate: async (prompt, k) => {
        const { sampler, release } = await this.lease(name);
        try {
          return await sampler.generate(prompt, k);
        } finally {
          release();
        }
      },
    };
  }

  /** Every version as a candidate source, by name (what createServer's `candidateSources` takes). */
  candidateSources(): Record<string, CandidateSource> {
    return Object.fromEntries(this.names().map((n) => [n, this.candidateSource(n)]));
  }

  /** Stops every worker; requests still waiting for a load fail, and later ones are refused. */
  async close(): Promise<void> {
    this.closed = true;
    this.wake();
    const running = [...this.entries.values()].filter((e) => e.sampler);
    const samplers = running.map((e) => e.sampler);
    for (const e of running) e.sampler = undefined;
    await Promise.all(running.map((e, i) => this.stop(e, samplers[i])));
  }

  /** Holds the version's worker (loading it first if needed) until `release` is called. */
  async lease(name: string): Promise<{ sampler: PooledSampler; release: () => void }> {
    const e = this.entry(name);
    if (this.closed) throw new Error(`the model server is shutting down; "${name}" is not served`);
    e.inFlight++;
    let sampler: PooledSampler;
    try {
      e.sampler ??= this.load(e);
      const loading = e.sampler;
      sampler = await loading.catch((err) => {
        // A failed load is forgotten, so that the next request tries again.
        if (e.sampler === loading) e.sampler = undefined;
        throw err;
      });
    } catch (err) {
      e.inFlight--;
      this.wake();
      throw err;
    }
    e.lastUsed = ++this.clock;
    let released = false;
    return {
      sampler,
      release: () => {
        if (released) return;
        released = true;
        e.inFlight--;
        e.lastUsed = ++this.clock;
        this.wake();
      },
    };
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`no model "${name}" is served; served: ${this.names().join(', ') || 'none'}`);
    return e;
  }

  /** Makes room (evicting idle versions, least recently used first, or waiting for busy ones), then starts. */
  private async load(e: Entry): Promise<PooledSampler> {
    while (this.usedBytes() + e.bytes > this.budgetBytes) {
      if (this.closed) throw new Error(`the model server is shutting down; "${e.name}" is not served`);
      const idle = [...this.entries.values()]
        .filter((o) => o !== e && o.sampler && o.inFlight === 0)
        .sort((a, b) => a.lastUsed - b.lastUsed);
      const victim = idle[0];
      if (victim) {
        const stopping = victim.sampler;
        victim.sampler = undefined; // new requests for it start a fresh load
        await this.stop(victim, stopping);
      } else {
        await new Promise<void>((r) => this.waiters.push(r));
      }
    }
    // Reserved in the same turn as the check above, so two loads never both count on the same free bytes.
    e.reserved = true;
    try {
      return await this.startSampler(e.name, e.dir);
    } catch (err) {
      e.reserved = false;
      this.wake();
      throw err;
    }
  }

  /**
   * Stops a worker (the caller has already unset `e.sampler`). Its bytes move from the entry to `stoppingBytes`
   * until it has stopped, so a request that loads the version again meanwhile makes its own reservation.
   */
  private async stop(e: Entry, sampler: Promise<PooledSampler> | undefined): Promise<void> {
    e.reserved = false;
    this.stoppingBytes += e.bytes;
    try {
      await (await sampler)?.close();
    } catch {
      // A worker that failed to load has nothing to stop.
    } finally {
      this.stoppingBytes -= e.bytes;
      this.wake();
    }
  }

  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w();
  }
}
