// Rewards for sampled completions from several sources — a reward model folder, a user's verifier module
// (`export default (prompt, completion) => number | Promise<number>`) — and their weighted sum. Every score is
// checked: a module that throws or returns anything but a finite number is an error naming the module and prompt.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkModelFolder, type LoadDType, loadRewardModel, type ScalarModel } from '../models/index.js';
import { type EpisodeTokens, rewardModelFn } from './reward_fn.js';

/** One source of rewards: a score per completion. */
export interface RewardSource {
  /** Its metric name: `rewards/<name>`. */
  name: string;
  score(prompts: string[], completions: string[], tokens: EpisodeTokens): Promise<number[]>;
}

/** The reward model's score of prompt + completion, read at the completion's last token. */
export function rewardModelSource(rm: ScalarModel, padId: number, name = 'model'): RewardSource {
  const fn = rewardModelFn(rm, padId);
  return { name, score: async (prompts, completions, tokens) => fn(prompts, completions, tokens) };
}

export type Verifier = (prompt: string, completion: string) => number | Promise<number>;

/** A verifier function as a reward source; `where` names it in errors (a module's path). */
export function verifierSource(fn: Verifier, where: string, name = 'verifier'): RewardSource {
  return {
    name,
    async score(prompts, completions) {
      const out: number[] = [];
      for (const [i, prompt] of prompts.entries()) out.push(await callVerifier(fn, where, prompt, completions[i]));
      return out;
    },
  };
}

const quote = (text: string) => JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);

/** Calls a verifier once; throws naming the module and the prompt when it throws or returns a non-number. */
export async function callVerifier(fn: Verifier, where: string, prompt: string, completion: string): Promise<number> {
  let value: unknown;
  try {
    value = await fn(prompt, completion);
  } catch (e) {
    throw new Error(`${where}: threw for prompt ${quote(prompt)}: ${(e as Error)?.message ?? String(e)}`);
  }
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new Error(
      `${where}: returned ${typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? typeof value)} ` +
        `for prompt ${quote(prompt)}; a reward must be a finite number`,
    );
  return value;
}

/**
 * Loads a verifier module: its default export must be a function (prompt, completion) → number. JavaScript is
 * imported as is; a single-file TypeScript module is transpiled with the `typescript` package where it is installed
 * (a sibling temporary .mjs, removed at once, so that its own relative imports still resolve), and is otherwise an
 * error that asks for the .js. We do not make typescript a runtime dependency for this one convenience.
 */
export async function loadVerifierModule(path: string): Promise<{ fn: Verifier; where: string; name: string }> {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new Error(`${path}: reward module not found`);
  const ext = extname(abs);
  let mod: { default?: unknown };
  if (ext === '.ts' || ext === '.mts') mod = await importTypeScript(abs, path);
  else {
    try {
      mod = await import(pathToFileURL(abs).href);
    } catch (e) {
      throw new Error(`${path}: cannot import the reward module: ${(e as Error).message}`);
    }
  }
  if (typeof mod.default !== 'function')
    throw new Error(
      `${path}: a reward module must export a default function (prompt, completion) => number, ` +
        `found ${mod.default === undefined ? 'no default export' : typeof mod.default}`,
    );
  return { fn: mod.default as Verifier, where: path, name: basename(abs, ext) };
}

async function importTypeScript(abs: string, path: string): Promise<{ default?: unknown }> {
  let ts: typeof import('typescript');
  try {
    ts = createRequire(import.meta.url)('typescript');
  } catch {
    // `typescript` is a dev dependency: an install without dev dependencies (--omit=dev) has no compiler.
    throw new Error(
      `${path}: a TypeScript reward module is transpiled with the "typescript" package, which is not installed ` +
        'here (a dev dependency); pass the module as .js or .mjs (e.g. compiled with tsc), or install typescript',
    );
  }
  const js = ts.transpileModule(readFileSync(abs, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: abs,
  }).outputText;
  const tmp = join(dirname(abs), `.${basename(abs)}.${process.pid}.mjs`);
  writeFileSync(tmp, js);
  try {
    return await import(pathToFileURL(tmp).href);
  } catch (e) {
    throw new Error(`${path}: cannot import the reward module: ${(e as Error).message}`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Where a run's rewards come from: a reward model folder, and/or a verifier module's path or a function in code. */
export interface RewardInputs {
  rewardModelDir?: string;
  rewardModule?: string;
  verifier?: Verifier;
}

/**
 * Checks the reward inputs and their weights (order: reward model, verifier; empty: all 1), imports a verifier module
 * and calls the verifier once on the first prompt and an empty completion — all before any model is loaded. `load`
 * then loads the reward model (in `dtype`, checked to read the policy's vocabulary) and gives every source its weight.
 */
export async function checkRewards(o: RewardInputs, weights: number[], firstPrompt: string) {
  if (o.rewardModelDir) checkModelFolder(o.rewardModelDir, 'scalar');
  if (!o.rewardModelDir && !o.rewardModule && !o.verifier)
    throw new Error('grpo: no reward: give a reward model folder, a reward module, or both');
  if (o.rewardModule && o.verifier) throw new Error('grpo: give a reward module or a verifier function, not both');
  const n = (o.rewardModelDir ? 1 : 0) + (o.rewardModule || o.verifier ? 1 : 0);
  if (weights.length > 0 && weights.length !== n)
    throw new Error(
      `grpo: field "rewardWeights" has ${weights.length} weights for ${n} reward source(s) (order: reward model, reward module)`,
    );
  const module = o.rewardModule ? await loadVerifierModule(o.rewardModule) : null;
  const verifier = module ?? (o.verifier ? { fn: o.verifier, where: 'verifier', name: 'verifier' } : null);
  if (verifier) await callVerifier(verifier.fn, verifier.where, firstPrompt, '');
  const load = (vocabSize: number, padId: number, opts: { dtype: LoadDType }) => {
    const sources: RewardSource[] = [];
    if (o.rewardModelDir) {
      const rm = loadRewardModel(o.rewardModelDir, opts).model;
      if (rm.trunk.config.vocabSize !== vocabSize)
        throw new Error(
          `${join(o.rewardModelDir, 'config.json')}: vocabulary of ${rm.trunk.config.vocabSize}, the policy's is ` +
            `${vocabSize}; the reward model must read the policy's tokens`,
        );
      sources.push(rewardModelSource(rm, padId));
    }
    if (verifier) sources.push(verifierSource(verifier.fn, verifier.where, verifier.name));
    return { sources, weights: weights.length > 0 ? weights : sources.map(() => 1) };
  };
  return { load };
}

export interface WeightedReward {
  /** The combined reward of each completion: Σ weight·score. */
  total: number[];
  /** Each source's mean score, as `rewards/<name>`. */
  means: Record<string, number>;
}

/** Scores completions with every source and sums them with their weights. */
export async function weightedReward(
  sources: RewardSource[],
  weights: number[],
  prompts: string[],
  completions: string[],
  tokens: EpisodeTokens,
): Promise<WeightedReward> {
  if (sources.length === 0 || sources.length !== weights.length)
    throw new Error(`weightedReward: ${sources.length} reward sources but ${weights.length} weights`);
  const total = new Array<number>(prompts.length).fill(0);
  const means: Record<string, number> = {};
  for (const [k, source] of sources.entries()) {
    const s = await source.score(prompts, completions, tokens);
    if (s.length !== prompts.length || !s.every(Number.isFinite))
      throw new Error(`reward "${source.name}": expected ${prompts.length} finite scores, got ${JSON.stringify(s)}`);
    for (let i = 0; i < s.length; i++) total[i] += weights[k] * s[i];
    means[`rewards/${source.name}`] = s.reduce((a, b) => a + b, 0) / s.length;
  }
  return { total, means };
}
