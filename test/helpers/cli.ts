// Runs `instructkit` in child processes, for tests that kill a run with SIGKILL and resume it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listCheckpoints } from '../../src/train/checkpoint.js';
import { readMetrics } from '../../src/train/metrics.js';

const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the CLI; `killWhen` is polled every 2 ms and the child is SIGKILLed once it returns true. */
export function spawnCli(args: string[], killWhen?: () => boolean): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    // The same single thread in every run: bit-identical sums need an equal thread count.
    const env = { ...process.env, INSTRUCTKIT_THREADS: '1' };
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    const poll = killWhen
      ? setInterval(() => {
          if (killWhen()) {
            clearInterval(poll);
            child.kill('SIGKILL');
          }
        }, 2)
      : undefined;
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, stderr });
    });
  });
}

/** Kills `args` (which writes checkpoints under out/checkpoints) once its first checkpoint is complete. */
export async function killAfterFirstCheckpoint(args: string[], out: string): Promise<CliRun> {
  const run = await spawnCli(args, () => listCheckpoints(join(out, 'checkpoints')).length > 0);
  assert.equal(run.signal, 'SIGKILL', `the run should have been killed mid-way:\n${run.stderr}`);
  return run;
}

/** metrics.jsonl without wall-clock fields, for comparing runs. */
export function metricsWithoutTime(out: string): Record<string, unknown>[] {
  return readMetrics(join(out, 'metrics.jsonl')).map((m) =>
    Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'time' && !k.startsWith('time/'))),
  );
}

/** Asserts that a killed-and-resumed run and an uninterrupted one wrote the same metrics and the same weights. */
export function assertSameRun(resumed: string, straight: string, weights = 'model.safetensors'): void {
  const a = metricsWithoutTime(resumed);
  assert.ok(a.length > 0, 'no metrics');
  assert.deepEqual(a, metricsWithoutTime(straight));
  assert.deepEqual(readFileSync(join(resumed, weights)), readFileSync(join(straight, weights)));
}
