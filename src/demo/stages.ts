/**
 * The demo's stages and their cache: a stage's key hashes its config and the keys (or file hashes) of its inputs; a
 * stage whose folder's stage.json holds the same key is skipped. Runs stages in order with a running ETA.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatSeconds } from '../train/progress.js';

interface StageRecord<T> {
  key: string;
  seconds: number;
  result: T;
}

interface StageLog {
  name: string;
  seconds: number;
  cached: boolean;
  summary: string;
}

// Bumped when a stage's outputs change shape, so that old run folders are not read as current.
const CACHE_VERSION = 3;
export const hash = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
export const fileHash = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16);

/** Runs stages in order, skipping those whose inputs did not change, with a running ETA over the whole demo. */
export class Stages {
  readonly log: StageLog[] = [];
  private done = 0;
  private readonly start = Date.now();

  constructor(
    private readonly out: string,
    private readonly fresh: boolean,
    private readonly names: readonly string[],
    /** Expected seconds per stage, for the ETA (scaled by how fast the run actually goes). */
    private readonly expected: Record<string, number>,
    private readonly say: (line: string) => void,
  ) {}

  dir(name: string): string {
    return join(this.out, name);
  }

  /**
   * Runs `fn` in a fresh stage folder unless the folder's stage.json holds the same key; returns fn's result (a
   * JSON value) either way. `summary` is the stage's one line.
   */
  async run<T>(
    name: string,
    inputs: unknown,
    fn: (dir: string) => T | Promise<T>,
    summary: (r: T) => string,
  ): Promise<{ key: string; result: T }> {
    const key = hash({ version: CACHE_VERSION, name, inputs });
    const dir = this.dir(name);
    const recordPath = join(dir, 'stage.json');
    const tag = `[${this.names.indexOf(name) + 1}/${this.names.length}] ${name}`;
    if (!this.fresh && existsSync(recordPath)) {
      const saved = JSON.parse(readFileSync(recordPath, 'utf8')) as StageRecord<T>;
      if (saved.key === key) {
        this.finish(name, 0, true, summary(saved.result));
        this.say(`${tag}: cached (inputs unchanged) — ${summary(saved.result)}`);
        return { key, result: saved.result };
      }
    }
    this.say(`${tag}: running${this.eta(name)}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const t0 = Date.now();
    const result = await fn(dir);
    const seconds = (Date.now() - t0) / 1000;
    writeFileSync(recordPath, `${JSON.stringify({ key, seconds, result } satisfies StageRecord<T>)}\n`);
    this.finish(name, seconds, false, summary(result));
    this.say(`${tag}: done in ${formatSeconds(seconds)} — ${summary(result)}`);
    return { key, result };
  }

  private finish(name: string, seconds: number, cached: boolean, summary: string): void {
    this.log.push({ name, seconds, cached, summary });
    if (!cached) this.done += this.expected[name] ?? 0;
  }

  // Remaining expected seconds, scaled by the measured pace of the stages run so far.
  private eta(current: string): string {
    const left = this.names.slice(this.names.indexOf(current)).reduce((s, n) => s + (this.expected[n] ?? 0), 0);
    const elapsed = (Date.now() - this.start) / 1000;
    const pace = this.done > 0 && elapsed > 5 ? elapsed / this.done : 1;
    return ` (demo ETA ${formatSeconds(left * pace)})`;
  }
}
