/**
 * The kinds of training job: for each, the trainer's ConfigSpec (the same schema the CLI's flags and --help come
 * from), the store export it trains on, and the `instructkit` command line the worker runs it with.
 */
import { checkDpoConfig, dpoSpec } from '../rlhf/dpo.js';
import { checkGrpoConfig, grpoSpec } from '../rlhf/grpo.js';
import { checkPPOConfig, ppoSpec } from '../rlhf/ppo.js';
import { checkRmConfig, rmSpec } from '../rlhf/reward.js';
import { checkSftConfig, checkSftPtx, sftSpec } from '../rlhf/sft.js';
import type { JobKind, ModelHead, Store } from '../store/index.js';
import { baseFields, loraFields } from '../train/config.js';

export interface JobFiles {
  /** The base model folder (the policy for ppo and grpo). */
  base: string;
  /** The reward model folder (ppo, grpo). */
  reward: string | null;
  data: string;
  config: string;
  out: string;
  ptx: string | null;
}

export interface JobKindSpec {
  // biome-ignore lint/suspicious/noExplicitAny: each kind has its own config fields
  spec: { stage: string; schema: object; defaults: object; resolve: (layers: any[]) => Record<string, unknown> };
  /** What the snapshot holds, in words ("no demonstrations yet"). */
  data: 'demonstrations' | 'comparisons' | 'prompts';
  /** The base model's head, and whether a reward model is needed. */
  baseHead: ModelHead;
  needsRewardModel: boolean;
  /**
   * The trainer's own check (across fields, LoRA; `ptx`: whether a pretraining corpus is given), as the trainer makes
   * it (throws naming the field).
   */
  check: (config: Record<string, unknown>, source: string, ptx: boolean) => void;
  /** The `instructkit` arguments that run it. */
  args: (f: JobFiles) => string[];
}

const dataArgs = (f: JobFiles) => ['--model', f.base, '--data', f.data, '--out', f.out, '--config', f.config];

export const JOB_KINDS: Record<JobKind, JobKindSpec> = {
  sft: {
    spec: sftSpec,
    data: 'demonstrations',
    baseHead: 'causal',
    needsRewardModel: false,
    check: (c, source, ptx) => {
      checkSftConfig(c as never, source);
      checkSftPtx(c as never, ptx);
    },
    args: (f) => ['sft', ...dataArgs(f), ...(f.ptx ? ['--ptx', f.ptx] : [])],
  },
  rm: {
    spec: rmSpec,
    data: 'comparisons',
    baseHead: 'causal',
    needsRewardModel: false,
    check: (c, source) => checkRmConfig(c as never, source),
    args: (f) => ['rm', ...dataArgs(f)],
  },
  dpo: {
    spec: dpoSpec,
    data: 'comparisons',
    baseHead: 'causal',
    needsRewardModel: false,
    check: (c, source) => checkDpoConfig(c as never, source),
    args: (f) => ['dpo', ...dataArgs(f)],
  },
  ppo: {
    spec: ppoSpec,
    data: 'prompts',
    baseHead: 'causal',
    needsRewardModel: true,
    check: (c, source) => checkPPOConfig(c as never, source),
    args: (f) => [
      'ppo',
      ...['--policy', f.base, '--reward', f.reward!, '--prompts', f.data, '--out', f.out, '--config', f.config],
      ...(f.ptx ? ['--ptx', f.ptx] : []),
    ],
  },
  grpo: {
    spec: grpoSpec,
    data: 'prompts',
    baseHead: 'causal',
    needsRewardModel: true,
    check: (c, source) => checkGrpoConfig(c as never, source),
    args: (f) => [
      'grpo',
      ...['--policy', f.base, '--reward-model', f.reward!, '--prompts', f.data, '--out', f.out, '--config', f.config],
    ],
  },
};

export const isJobKind = (k: string): k is JobKind => Object.hasOwn(JOB_KINDS, k);

/** A section of a kind's config form on the Train screen. */
export interface FormGroup {
  title: string;
  fields: string[];
  /** Folded away until opened: settings most runs leave at their defaults. */
  advanced: boolean;
  /** Shown only when the job mixes in a pretraining corpus (PPO-ptx, SFT's mix). */
  withPtx: boolean;
}

const OPTIMIZER_FIELDS = new Set(Object.keys(baseFields()));
const LORA_FIELDS = new Set(Object.keys(loraFields()));
/** The shared fields nearly every run sets, kept beside the trainer's own. */
const EVERYDAY_FIELDS = new Set(['lr', 'batchSize']);

/**
 * The form's sections, from where each field of the trainer's ConfigSpec comes from (so a new field lands in its
 * place without a list to keep): the trainer's own fields and lr / batchSize open; the optimizer and schedule fields
 * every trainer shares (`baseFields`) and LoRA's (`loraFields`) folded; the `ptx*` fields only with a ptx corpus.
 */
/** Whether a kind can mix in a pretraining corpus (its config has the ptx fields: ppo, sft). */
export function mixesPtx(kind: JobKind): boolean {
  return 'ptxCoef' in (JOB_KINDS[kind].spec.schema as { properties: object }).properties;
}

export function formGroups(kind: JobKind): FormGroup[] {
  const names = Object.keys((JOB_KINDS[kind].spec.schema as { properties: object }).properties);
  const ptx = names.filter((n) => n.startsWith('ptx'));
  const optimizer = names.filter((n) => OPTIMIZER_FIELDS.has(n) && !EVERYDAY_FIELDS.has(n));
  const lora = names.filter((n) => LORA_FIELDS.has(n));
  const shared = new Set([...ptx, ...optimizer, ...lora]);
  const groups: FormGroup[] = [
    { title: kind.toUpperCase(), fields: names.filter((n) => !shared.has(n)), advanced: false, withPtx: false },
    {
      title: kind === 'ppo' ? 'Pretraining mix (PPO-ptx)' : 'Pretraining mix',
      fields: ptx,
      advanced: false,
      withPtx: true,
    },
    { title: 'Optimizer, schedule and checkpoints', fields: optimizer, advanced: true, withPtx: false },
    { title: 'LoRA', fields: lora, advanced: true, withPtx: false },
  ];
  return groups.filter((g) => g.fields.length > 0);
}

/**
 * The training split's export a job of this kind trains on, as the admin's export gives it (degenerate records are
 * already dropped there): demonstrations; rankings plus pairwise comparisons (A/B, chat); or prompts.
 */
export async function exportFor(store: Store, kind: JobKind): Promise<object[]> {
  switch (JOB_KINDS[kind].data) {
    case 'demonstrations':
      return store.exportDemonstrations('training');
    case 'comparisons':
      return [
        ...(await store.exportRankings('training')),
        ...(await store.exportPairwise('training', { rankings: false, comparisons: true })),
      ];
    case 'prompts':
      return store.exportPrompts('training');
  }
}
