// Checkpoints for exact resume. Each is a folder `step-NNNNNNNN/` holding named safetensors files (models,
// optimizer moments) and `trainer_state.json` (step, RNG states, data position, anything else the trainer needs).
// A folder is written under a temporary name and renamed into place, so a run killed mid-save (even by SIGKILL)
// leaves the previous checkpoint intact and never a torn one; the temporary folders such a kill leaves behind
// (`step-N.tmp-PID`, whose PID no longer runs) are removed by the next run.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../models/safetensors.js';
import type { Tensor } from '../tensor/index.js';

export interface CheckpointContent {
  step: number;
  /** JSON-safe trainer state: RNG states, data position, optimizer meta, controllers... */
  state: Record<string, unknown>;
  /** Tensor groups, each saved as `<name>.safetensors` (e.g. policy, value, optimizer). */
  tensors: Record<string, Map<string, Tensor>>;
}

const PREFIX = 'step-';

function folderFor(root: string, step: number): string {
  return join(root, `${PREFIX}${String(step).padStart(8, '0')}`);
}

/** Writes a checkpoint for `step` under root and keeps only the newest `keep` of them. */
export function saveCheckpoint(root: string, content: CheckpointContent, keep = 2): string {
  mkdirSync(root, { recursive: true });
  const final = folderFor(root, content.step);
  const tmp = `${final}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  for (const [name, tensors] of Object.entries(content.tensors))
    writeSafetensors(join(tmp, `${name}.safetensors`), tensors);
  writeFileSync(
    join(tmp, 'trainer_state.json'),
    `${JSON.stringify({ step: content.step, ...content.state }, null, 2)}\n`,
  );
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  const all = listCheckpoints(root);
  for (const old of all.slice(0, Math.max(0, all.length - keep)))
    rmSync(join(root, old), { recursive: true, force: true });
  return final;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // it runs, as another user
  }
}

/** Removes the temporary folders of saves killed mid-way (their process is gone); returns their names. */
export function cleanStaleCheckpoints(root: string): string[] {
  if (!existsSync(root)) return [];
  const stale = readdirSync(root).filter((n) => {
    const m = /^step-\d{8}\.tmp-(\d+)$/.exec(n);
    return m !== null && Number(m[1]) !== process.pid && !alive(Number(m[1]));
  });
  for (const n of stale) rmSync(join(root, n), { recursive: true, force: true });
  return stale;
}

/** Complete checkpoint folder names under root, oldest first. */
export function listCheckpoints(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => /^step-\d{8}$/.test(n) && existsSync(join(root, n, 'trainer_state.json')))
    .sort();
}

/** The newest complete checkpoint under root, or null. Tensor groups are read only when named in `groups`. */
export function loadLatestCheckpoint(root: string, groups: string[]): CheckpointContent | null {
  const all = listCheckpoints(root);
  if (all.length === 0) return null;
  const dir = join(root, all[all.length - 1]);
  const raw = JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8')) as Record<string, unknown>;
  const { step, ...state } = raw;
  const tensors: Record<string, Map<string, Tensor>> = {};
  for (const g of groups) tensors[g] = readSafetensors(join(dir, `${g}.safetensors`));
  return { step: step as number, state, tensors };
}
