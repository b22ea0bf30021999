// metrics.jsonl: one object per step, {"step", "time", "stage", ...named metrics}, read by the report and the app.
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export type Metrics = Record<string, number | string>;

export class MetricsLog {
  constructor(
    readonly path: string,
    readonly stage: string,
  ) {}

  /**
   * Keeps only records of this stage before `step` (and all other stages): a resumed run rewrites the steps after
   * its checkpoint, so the file matches an uninterrupted run.
   */
  truncateFrom(step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readMetrics(this.path).filter((r) => r.stage !== this.stage || Number(r.step) < step);
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    renameSync(tmp, this.path);
  }

  write(step: number, metrics: Metrics): void {
    const record = { step, time: Date.now() / 1000, stage: this.stage, ...metrics };
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }
}

/** Every complete record of a metrics file (a torn last line, from a kill mid-write, is skipped). */
export function readMetrics(path: string): Metrics[] {
  const out: Metrics[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // an interrupted append; the resumed run writes that step again
    }
  }
  return out;
}
