// A progress bar with ETA on a terminal; on a pipe or in CI, one plain line every few seconds instead.
import { SingleBar } from 'cli-progress';

export class Progress {
  private bar: SingleBar | null = null;
  private lastLine = 0;
  private readonly start = Date.now();

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    /** Done before this process started (a resumed run): the ETA counts only what this process did. */
    private readonly startAt = 0,
  ) {
    if (stream.isTTY && !process.env.CI) {
      this.bar = new SingleBar(
        { format: `${label} [{bar}] {value}/{total} | ETA {eta_formatted} | {status}`, hideCursor: true, stream },
        { barCompleteChar: '█', barIncompleteChar: '░' } as never,
      );
      this.bar.start(total, startAt, { status: '' });
    }
  }

  /** Sets the done count and a short status (e.g. "loss 2.31"). */
  update(done: number, status = ''): void {
    if (this.bar) {
      this.bar.update(done, { status });
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < 5000 && done < this.total) return;
    this.lastLine = now;
    const elapsed = (now - this.start) / 1000;
    const since = done - this.startAt;
    const eta = since > 0 ? (elapsed * (this.total - done)) / since : Number.NaN;
    this.stream.write(
      `${this.label} ${done}/${this.total} | ${elapsed.toFixed(0)}s elapsed, ETA ${formatSeconds(eta)} | ${status}\n`,
    );
  }

  stop(): void {
    this.bar?.stop();
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return m < 60
    ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`
    : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
