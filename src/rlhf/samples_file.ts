// samples.jsonl of the on-policy trainers (PPO, GRPO/RLOO): sampled responses appended at step 1 and every
// sampleEvery steps; a fresh run into a used folder starts it over, and a resumed run cuts it back to its checkpoint
// (it writes those steps again). Also the table of samples PPO prints.
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class SamplesFile {
  readonly path: string;

  constructor(
    outDir: string,
    private readonly every: number,
  ) {
    this.path = join(outDir, 'samples.jsonl');
  }

  /** Called when a run opens its folder: a fresh run replaces old samples instead of appending to them. */
  open(resuming: boolean): void {
    if (!resuming) this.keepBefore(0);
  }

  /** Called on resume from a checkpoint of `step`: the steps after it are written again. */
  resumeAt(step: number): void {
    this.keepBefore(step + 1);
  }

  /** Whether a step's samples are written. */
  due(step: number): boolean {
    return this.every > 0 && (step === 1 || step % this.every === 0);
  }

  /** Appends one JSON line per record. */
  append(records: Record<string, unknown>[]): void {
    if (records.length > 0) appendFileSync(this.path, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }

  // Drops records of steps >= from.
  private keepBefore(from: number): void {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((l) => {
        if (!l.trim()) return false;
        try {
          return JSON.parse(l).step < from;
        } catch {
          return false;
        }
      });
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, kept.map((l) => `${l}\n`).join(''));
    renameSync(tmp, this.path);
  }
}

/** A table of sampled responses for the terminal: prompt | response | score, one line each. */
export function sampleTable(step: number, rows: { promptText: string; responseText: string; score: number }[]): string {
  const cut = (t: string, n: number) => {
    const one = JSON.stringify(t).slice(1, -1);
    return one.length > n ? `${one.slice(0, n - 1)}…` : one.padEnd(n);
  };
  const lines = [`samples at step ${step}:`, `  ${'prompt'.padEnd(30)} | ${'response'.padEnd(50)} | score`];
  for (const e of rows) lines.push(`  ${cut(e.promptText, 30)} | ${cut(e.responseText, 50)} | ${e.score.toFixed(3)}`);
  return lines.join('\n');
}
