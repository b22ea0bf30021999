// What a model folder holds, read from its config.json before any weight: a causal LM (what SFT trains, PPO's
// policy) or a one-label scalar-head model (a reward or value model, *ForSequenceClassification).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '../tokenizer/index.js';
import type { ScalarModel } from './heads.js';
import { type LoadOptions, loadScalarPretrained } from './hf.js';

export type FolderKind = 'causal' | 'scalar';

/** The kind of a model folder; errors name the file and field (a missing folder, config.json or model_type). */
export function folderKind(dir: string): FolderKind {
  const path = join(dir, 'config.json');
  if (!existsSync(dir)) throw new Error(`${dir}: model folder not found`);
  if (!existsSync(path)) throw new Error(`${path}: file not found; ${dir} is not a model folder`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || typeof json.model_type !== 'string')
    throw new Error(`${path}: field "model_type" is missing; ${dir} is not a model folder`);
  const arch = Array.isArray(json.architectures) ? String(json.architectures[0]) : '';
  if (!/ForSequenceClassification$/.test(arch)) return 'causal';
  if (json.num_labels !== undefined && json.num_labels !== 1)
    throw new Error(`${path}: field "num_labels" is ${json.num_labels}, a reward model has 1`);
  return 'scalar';
}

/** Throws unless dir is a model folder of the wanted kind, naming the file and field. */
export function checkModelFolder(dir: string, want: FolderKind): void {
  const kind = folderKind(dir);
  const path = join(dir, 'config.json');
  if (want === 'causal' && kind === 'scalar')
    throw new Error(
      `${path}: field "architectures" says a reward/value model (…ForSequenceClassification), but a causal LM ` +
        '(…LMHeadModel, …ForCausalLM) is needed here',
    );
  if (want === 'scalar' && kind === 'causal')
    throw new Error(
      `${path}: field "architectures" says a language model: not a reward model (…ForSequenceClassification with ` +
        'num_labels 1, as `instructkit rm` writes)',
    );
}

/**
 * Loads a reward model folder (checked to be one), in eval mode, with its tokenizer when it has one (a value model
 * may come without: it reads the policy's ids); `dtype` bf16 holds it frozen in bf16.
 */
export function loadRewardModel(
  dir: string,
  opts: LoadOptions = {},
): { model: ScalarModel; tokenizer: Tokenizer | null } {
  checkModelFolder(dir, 'scalar');
  const tokenizer = existsSync(join(dir, 'tokenizer.json')) ? Tokenizer.fromDir(dir) : null;
  return { model: loadScalarPretrained(dir, opts), tokenizer };
}
