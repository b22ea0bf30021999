/**
 * The kinds of training job: for each, the trainer's ConfigSpec (the same schema the CLI's flags and --help come
 * from), the store export it trains on, and the `instructkit` command line the worker runs it with.
 */
import { dpoSpec } from '../rlhf/dpo.js';
import { grpoSpec } from '../rlhf/grpo.js';
import { checkPPOConfig, ppoSpec } from '../rlhf/ppo.js';
import { rmSpec } from '../rlhf/reward.js';
import { sftSpec } from '../rlhf/sft.js';
import type { JobKind, ModelHead, Store } from '../store/index.js';

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
  /** Extra checks across fields, as the CLI makes them (throws naming the field). */
  check?: (config: Record<string, unknown>) => void;
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
    args: (f) => ['sft', ...dataArgs(f)],
  },
  rm: {
    spec: rmSpec,
    data: 'comparisons',
    baseHead: 'causal',
    needsRewardModel: false,
    args: (f) => ['rm', ...dataArgs(f)],
  },
  dpo: {
    spec: dpoSpec,
    data: 'comparisons',
    baseHead: 'causal',
    needsRewardModel: false,
    args: (f) => ['dpo', ...dataArgs(f)],
  },
  ppo: {
    spec: ppoSpec,
    data: 'prompts',
    baseHead: 'causal',
    needsRewardModel: true,
    check: (c) => checkPPOConfig(c as never, 'config'),
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
    args: (f) => [
      'grpo',
      ...['--policy', f.base, '--reward-model', f.reward!, '--prompts', f.data, '--out', f.out, '--config', f.config],
    ],
  },
};

export const isJobKind = (k: string): k is JobKind => Object.hasOwn(JOB_KINDS, k);

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
