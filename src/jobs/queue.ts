/**
 * Putting work in the registry and the queue: registering a model folder (checked by the models/ folder classifier)
 * and enqueueing a job (config checked by the trainer's ConfigSpec, the training data snapshotted to the job folder
 * with its sha256) — every check before anything is written, each failure a StoreError ('invalid', 422) naming the
 * field.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { folderKind, parameterCount } from '../models/index.js';
import { isAdapterFolder } from '../models/lora.js';
import {
  type Job,
  type JobKind,
  type ModelKind,
  type ModelVersion,
  type Store,
  StoreError,
  toJsonl,
} from '../store/index.js';
import { exportFor, JOB_KINDS, mixesPtx } from './kinds.js';
import { registryPath } from './model_paths.js';

/**
 * Registers an existing model folder (idempotent by its registry path: relative to `modelsDir`, the shared models
 * folder, when inside it; see model_paths.ts).
 */
export async function registerFolder(
  store: Store,
  dir: string,
  opts: { name?: string; kind?: ModelKind; modelsDir?: string } = {},
): Promise<{ model: ModelVersion; created: boolean }> {
  const path = resolve(dir);
  // The registry serves and trains from whole models; an adapter needs its base merged in first.
  if (isAdapterFolder(path) && !existsSync(join(path, 'config.json')))
    throw new StoreError(
      'invalid',
      `${dir} is a LoRA adapter folder; write the merged model first (instructkit export --format safetensors ${dir} OUT) and register OUT`,
      { field: 'path' },
    );
  let head: 'causal' | 'scalar';
  let params: number;
  try {
    head = folderKind(path);
    params = parameterCount(path);
  } catch (e) {
    throw new StoreError('invalid', `${dir} is not a model folder: ${(e as Error).message}`, { field: 'path' });
  }
  // A name given is the admin's (taken: 409); the folder's own name gets a suffix when another version has it.
  return store.models.register(
    {
      name: opts.name ?? basename(path),
      path: registryPath(opts.modelsDir, path),
      kind: opts.kind ?? 'registered',
      head,
      params,
    },
    { suffix: opts.name === undefined, formerPaths: [path, realpathSync(path)] },
  );
}

/**
 * Folders an older version registered by absolute path inside the models folder, recorded relative to it (as
 * registerFolder records them now), so that machines mounting that folder elsewhere find them too; says how many.
 */
export async function adoptAbsolutePaths(store: Store, modelsDir: string, say: (line: string) => void): Promise<void> {
  const moved = await store.models.relocate((path) => (isAbsolute(path) ? registryPath(modelsDir, path) : path));
  if (moved > 0) say(`registry: ${moved} model folder(s) now recorded relative to ${modelsDir}`);
}

export interface JobRequest {
  kind: JobKind;
  /** Registry id of the model training starts from (the policy for ppo and grpo). */
  baseModel: number;
  /** Registry id of the reward model (ppo, grpo). */
  rewardModel?: number;
  /** The trainer's config fields; the rest take their defaults. */
  config?: Record<string, unknown>;
  /** PPO-ptx or SFT's mix: a pretraining corpus file on the worker's machine (as `instructkit ppo|sft --ptx`). */
  ptx?: string;
}

const invalid = (field: string, message: string): never => {
  throw new StoreError('invalid', message, { field });
};

// The field a ConfigSpec error names (`field "lr" (--lr) must be ...`, `unknown field "x"`).
const fieldOf = (message: string) => /field "([^"]+)"/.exec(message)?.[1];

async function modelFor(store: Store, id: number, field: string): Promise<ModelVersion> {
  try {
    return await store.models.get(id);
  } catch (e) {
    if (e instanceof StoreError && e.code === 'not_found')
      invalid(field, `${field}: model ${id} is not in the registry`);
    throw e;
  }
}

/** Checks a job request, snapshots its data into a new job folder under `jobsDir` and queues it. */
export async function enqueueJob(store: Store, jobsDir: string, req: JobRequest, createdBy?: number): Promise<Job> {
  const kind = JOB_KINDS[req.kind];
  let config: Record<string, unknown>;
  try {
    const source = `${req.kind} config`;
    config = kind.spec.resolve([{ values: req.config ?? {}, source }]);
    kind.check(config, source, req.ptx !== undefined);
  } catch (e) {
    const message = (e as Error).message;
    return invalid(`config.${fieldOf(message) ?? ''}`.replace(/\.$/, ''), message);
  }
  const base = await modelFor(store, req.baseModel, 'baseModel');
  if (base.head !== kind.baseHead)
    invalid('baseModel', `baseModel: ${base.name} is a reward/value model; ${req.kind} starts from a language model`);
  if (kind.needsRewardModel) {
    if (req.rewardModel === undefined) invalid('rewardModel', `rewardModel: ${req.kind} needs a reward model`);
    const rm = await modelFor(store, req.rewardModel!, 'rewardModel');
    if (rm.head !== 'scalar') invalid('rewardModel', `rewardModel: ${rm.name} is a language model, not a reward model`);
  } else if (req.rewardModel !== undefined) invalid('rewardModel', `rewardModel: ${req.kind} takes no reward model`);
  if (req.ptx !== undefined) {
    if (!mixesPtx(req.kind)) invalid('ptx', `ptx: only ppo and sft mix in pretraining data`);
    if (!statSync(req.ptx, { throwIfNoEntry: false })?.isFile()) invalid('ptx', `ptx: ${req.ptx}: file not found`);
  }

  const records = await exportFor(store, req.kind);
  if (records.length === 0) invalid('data', `no ${kind.data} yet: a ${req.kind} job needs some in the training split`);
  const snapshot = toJsonl(records);
  const dataHash = createHash('sha256').update(snapshot).digest('hex');

  let dir = '';
  try {
    return await store.jobs.enqueue(
      {
        kind: req.kind,
        baseModelId: base.id,
        rewardModelId: req.rewardModel ?? null,
        config,
        dataHash,
        dataCount: records.length,
        ptx: req.ptx === undefined ? null : registryPath(jobsDir, req.ptx),
        createdBy,
      },
      (id) => {
        // Recorded relative to the models folder, which each process (API server, workers) names for its machine.
        const name = `job-${id}`;
        dir = resolve(jobsDir, name);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'data.jsonl'), snapshot);
        writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
        return name;
      },
    );
  } catch (e) {
    if (dir) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
