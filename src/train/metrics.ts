// metrics.jsonl: one object per step, {"step", "time", "stage", ...named metrics}, read by the report and the app.
import {
  appendFileSync,
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeFileSync,
} from 'node:fs';

export type Metrics = Record<string, number | string>;

/**
 * Metric names, as TRL logs them, in one place: `train/` is the training batch, `eval/` held-out data, `value/`
 * PPO's value model, `policy/` its policy, `objective/` the RL objective, `rewards/` preference rewards.
 */
export const METRIC = {
  trainLoss: 'train/loss',
  trainAccuracy: 'train/accuracy',
  gradNorm: 'train/grad_norm',
  lr: 'lr',
  tokensPerSecond: 'time/tokens_per_second',
  epoch: 'epoch',
  evalLoss: 'eval/loss',
  evalAccuracy: 'eval/accuracy',
  evalRmScore: 'eval/rm_score',
  policyLoss: 'policy/loss',
  policyClipfrac: 'policy/clipfrac',
  policyApproxKl: 'policy/approxkl',
  policyGradNorm: 'policy/grad_norm',
  ptxLoss: 'ptx/loss',
  valueLoss: 'value/loss',
  valueClipfrac: 'value/clipfrac',
  valueGradNorm: 'value/grad_norm',
  kl: 'objective/kl',
  scores: 'objective/scores',
  rlhfReward: 'objective/rlhf_reward',
  entropy: 'objective/entropy',
  klCoef: 'objective/kl_coef',
  responseLength: 'response/length',
  eosFraction: 'response/eos_fraction',
  rolloutSeconds: 'time/rollout',
  generateSeconds: 'time/generate',
  rolloutTokensPerSecond: 'time/rollout_tokens_per_second',
  rewardsChosen: 'rewards/chosen',
  rewardsRejected: 'rewards/rejected',
  rewardsMargins: 'rewards/margins',
  rewardsAccuracies: 'rewards/accuracies',
} as const;

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
  return parseRecords(readFileSync(path, 'utf8'));
}

function parseRecords(text: string, out: Metrics[] = []): Metrics[] {
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // an interrupted append; the resumed run writes that step again
    }
  }
  return out;
}

/**
 * A metrics file followed while a run writes it (a training worker's heartbeats): each read parses only the lines
 * completed since the last, and starts over when the file was replaced or shortened (a resumed run rewrites it).
 */
export class MetricsFollower {
  private rows: Metrics[] = [];
  private offset = 0;
  private inode: number | null = null;

  constructor(readonly path: string) {}

  /** The records so far (the same array, grown), none while the file does not exist. */
  read(): Metrics[] {
    if (!existsSync(this.path)) return this.restart(null);
    // Size and inode of the file opened, so that a rewrite renamed in meanwhile is not read from the old offset.
    const fd = openSync(this.path, 'r');
    let chunk: Buffer;
    try {
      const st = fstatSync(fd);
      if (st.ino !== this.inode || st.size < this.offset) this.restart(st.ino);
      chunk = Buffer.alloc(st.size - this.offset);
      readSync(fd, chunk, 0, chunk.length, this.offset);
    } finally {
      closeSync(fd);
    }
    // Up to the last newline: a line still being appended is read whole next time.
    const end = chunk.lastIndexOf(0x0a) + 1;
    parseRecords(chunk.subarray(0, end).toString('utf8'), this.rows);
    this.offset += end;
    return this.rows;
  }

  /** Forgets what was read: the file is new (this inode), or gone. */
  private restart(inode: number | null): Metrics[] {
    this.rows = [];
    this.offset = 0;
    this.inode = inode;
    return this.rows;
  }
}
