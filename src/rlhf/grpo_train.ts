// The GRPO / RLOO training run around grpo.ts's iteration: inputs checked before any compute (folders, prompts,
// reward sources, a probe call of a verifier), metrics.jsonl, samples.jsonl, a progress bar, checkpoints for exact
// resume (policy, optimizer, generator, prompt order) and the final policy as a Hugging Face folder.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { savePretrained } from '../models/index.js';
import { AdamW } from '../nn/index.js';
import { Rng } from '../tensor/index.js';
import { listCheckpoints, loadLatestCheckpoint, saveCheckpoint } from '../train/checkpoint.js';
import { saveRunConfig } from '../train/config.js';
import { type Metrics, MetricsLog } from '../train/metrics.js';
import { Progress } from '../train/progress.js';
import { checkModelFolder, Formatter, loadCausalLM, loadRewardModel, shuffled } from './data.js';
import { checkGrpoConfig, type GrpoConfig, type GrpoSample, type GrpoSetup, grpoRollout, grpoUpdate } from './grpo.js';
import { type PromptSet, readPrompts, truncateSamples } from './ppo.js';
import {
  callVerifier,
  loadVerifierModule,
  type RewardSource,
  rewardModelSource,
  type Verifier,
  verifierSource,
} from './reward_sources.js';

export interface GrpoOptions {
  /** The policy's model folder (a causal LM with tokenizer.json), usually the SFT model; also the reference. */
  policyDir: string;
  /** A `{"prompt"}` JSONL file, or prompts given in code. */
  prompts: string | PromptSet;
  outDir: string;
  config: GrpoConfig;
  /** A reward model folder. */
  rewardModelDir?: string;
  /** A JS/TS module whose default export is a verifier (prompt, completion) → number. */
  rewardModule?: string;
  /** A verifier given in code (e.g. the demo world's checker), used like a module. */
  verifier?: Verifier;
  resume?: boolean;
  /** Resume even when the config differs from the one the run started with. */
  forceConfig?: boolean;
  /** Stops after the current iteration, with a checkpoint. */
  signal?: AbortSignal;
  onStep?: (step: number, metrics: Metrics) => void;
  log?: (line: string) => void;
}

export interface GrpoResult {
  steps: number;
  aborted: boolean;
  /** Mean reward (before any KL) of the first and of the last iteration run. */
  firstReward: number | null;
  lastReward: number | null;
}

/** Everything checked and loaded before any compute: config, folders, prompts, reward sources. */
async function prepareGrpo(o: GrpoOptions): Promise<GrpoSetup> {
  const cfg = o.config;
  checkGrpoConfig(cfg);
  checkModelFolder(o.policyDir, 'causal');
  if (o.rewardModelDir) checkModelFolder(o.rewardModelDir, 'scalar');
  if (!o.rewardModelDir && !o.rewardModule && !o.verifier)
    throw new Error('grpo: no reward: give a reward model folder, a reward module, or both');
  if (o.rewardModule && o.verifier) throw new Error('grpo: give a reward module or a verifier function, not both');
  const nSources = (o.rewardModelDir ? 1 : 0) + (o.rewardModule || o.verifier ? 1 : 0);
  if (cfg.rewardWeights.length > 0 && cfg.rewardWeights.length !== nSources)
    throw new Error(
      `grpo: field "rewardWeights" has ${cfg.rewardWeights.length} weights for ${nSources} reward source(s) ` +
        '(order: reward model, reward module)',
    );
  const prompts = typeof o.prompts === 'string' ? readPrompts(o.prompts) : o.prompts;
  const module = o.rewardModule ? await loadVerifierModule(o.rewardModule) : null;
  const verifier = module ? module : o.verifier ? { fn: o.verifier, where: 'verifier', name: 'verifier' } : null;
  // A verifier that cannot score an empty completion of the first prompt fails here, before any model is loaded.
  if (verifier) await callVerifier(verifier.fn, verifier.where, prompts.texts[0], '');
  if (!o.resume && listCheckpoints(join(o.outDir, 'checkpoints')).length > 0)
    throw new Error(
      `${join(o.outDir, 'checkpoints')}: holds checkpoints of an earlier run; resume it or choose another out`,
    );
  if (o.resume && !o.forceConfig) checkResumedConfig(join(o.outDir, 'grpo_config.json'), cfg);

  const { model: policy, tokenizer } = loadCausalLM(o.policyDir, { seed: cfg.seed });
  const fmt = new Formatter(tokenizer, o.policyDir);
  const context = policy.maxPositions;
  const promptIds = prompts.texts.map((text, i) => {
    const ids = fmt.prompt(text);
    if (ids.length + cfg.maxNewTokens > context)
      throw new Error(
        `${prompts.where[i]}: prompt of ${ids.length} tokens + maxNewTokens ${cfg.maxNewTokens} exceeds the ` +
          `context of ${context}`,
      );
    return ids;
  });
  const sources: RewardSource[] = [];
  if (o.rewardModelDir) {
    const rm = loadRewardModel(o.rewardModelDir);
    if (rm.model.trunk.config.vocabSize !== policy.config.vocabSize)
      throw new Error(
        `${join(o.rewardModelDir, 'config.json')}: vocabulary of ${rm.model.trunk.config.vocabSize}, the policy's is ` +
          `${policy.config.vocabSize}; the reward model must read the policy's tokens`,
      );
    sources.push(rewardModelSource(rm.model));
  }
  if (verifier) sources.push(verifierSource(verifier.fn, verifier.where, verifier.name));
  const weights = cfg.rewardWeights.length > 0 ? cfg.rewardWeights : sources.map(() => 1);
  // The reference is a frozen copy of the starting policy, needed only for the KL.
  const ref = cfg.beta > 0 ? loadCausalLM(o.policyDir).model : null;
  return { policy, ref, tokenizer, fmt, prompts, promptIds, sources, weights };
}

// A resumed run must go on as it started: every changed field but `steps` (which may grow) is refused by name.
function checkResumedConfig(path: string, cfg: GrpoConfig): void {
  if (!existsSync(path)) return;
  const before = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const now = cfg as unknown as Record<string, unknown>;
  const changed = Object.keys(now).filter((k) => k !== 'steps' && JSON.stringify(before[k]) !== JSON.stringify(now[k]));
  if (changed.length > 0)
    throw new Error(
      `${path}: the run was started with other settings: ` +
        changed.map((k) => `${k} ${JSON.stringify(before[k])} → ${JSON.stringify(now[k])}`).join(', ') +
        '; resume with the same settings, or pass --force-config to go on with the new ones',
    );
}

interface GrpoState {
  rng: number[];
  epoch: number;
  index: number;
  optimizer: ReturnType<AdamW['stateDict']>['meta'];
}

/**
 * Trains the policy with GRPO or RLOO; writes metrics.jsonl, samples.jsonl, grpo_config.json, checkpoints/ and the
 * final policy (a Hugging Face folder) into outDir. Resumes exactly from the newest checkpoint with `resume`.
 */
export async function trainGrpo(o: GrpoOptions): Promise<GrpoResult> {
  const cfg = o.config;
  const say = o.log ?? ((line: string) => console.error(line));
  const p = await prepareGrpo(o);
  const { policy } = p;
  policy.eval(); // no dropout: the rollout's and the update's log-probs must come from the same function
  p.ref?.eval();
  say(
    `grpo: ${p.promptIds.length} prompts, ${cfg.estimator} advantages over groups of ${cfg.groupSize}, rewards ` +
      p.sources.map((s, k) => `${p.weights[k]}×${s.name}`).join(' + '),
  );
  const opt = new AdamW(policy.parameters(), { lr: cfg.lr, weightDecay: cfg.weightDecay });
  const rng = new Rng(cfg.seed);
  let epoch = 0;
  let index = 0;
  let step = 0;
  const root = join(o.outDir, 'checkpoints');
  const log = new MetricsLog(join(o.outDir, 'metrics.jsonl'), 'grpo');
  const samplesPath = join(o.outDir, 'samples.jsonl');
  const saved = o.resume ? loadLatestCheckpoint(root, ['policy', 'optimizer']) : null;
  if (saved) {
    const s = saved.state as unknown as GrpoState;
    policy.loadStateDict(saved.tensors.policy);
    opt.loadStateDict({ meta: s.optimizer, tensors: saved.tensors.optimizer });
    for (const t of [...saved.tensors.policy.values(), ...saved.tensors.optimizer.values()]) t.dispose();
    rng.setState(s.rng);
    ({ epoch, index } = s);
    step = saved.step;
    say(`grpo: resuming after iteration ${step}`);
  }
  // A fresh run records its settings; a resume forced past changed ones records the new ones.
  if (!saved || o.forceConfig) saveRunConfig(o.outDir, 'grpo_config.json', cfg);
  log.truncateFrom(step + 1);
  truncateSamples(samplesPath, step + 1);
  let order = shuffled(p.promptIds.length, new Rng(cfg.seed + 1 + epoch));
  const nextBatch = () => {
    const out: number[] = [];
    while (out.length < cfg.batchSize) {
      if (index === order.length) {
        epoch++;
        index = 0;
        order = shuffled(p.promptIds.length, new Rng(cfg.seed + 1 + epoch));
      }
      out.push(order[index++]);
    }
    return out;
  };
  const checkpoint = () =>
    saveCheckpoint(root, {
      step,
      state: { rng: rng.getState(), epoch, index, optimizer: opt.stateDict().meta } satisfies GrpoState,
      tensors: { policy: policy.stateDict(), optimizer: opt.stateDict().tensors },
    });

  let firstReward: number | null = null;
  let lastReward: number | null = null;
  const progress = new Progress('grpo', cfg.steps);
  progress.update(step);
  let aborted = false;
  try {
    while (step < cfg.steps) {
      const t0 = performance.now();
      const r = await grpoRollout(p, cfg, nextBatch(), rng);
      const t1 = performance.now();
      const m = grpoUpdate(p, cfg, opt, r.samples, rng);
      step++;
      const metrics: Metrics = {
        ...r.metrics,
        ...m,
        lr: cfg.lr,
        'time/rollout': (t1 - t0) / 1000,
        'time/optimize': (performance.now() - t1) / 1000,
      };
      log.write(step, metrics);
      if (cfg.sampleEvery > 0 && (step === 1 || step % cfg.sampleEvery === 0))
        writeSamples(samplesPath, step, p.prompts.texts, r);
      firstReward ??= Number(metrics.reward);
      lastReward = Number(metrics.reward);
      const kl = metrics['objective/kl'] === undefined ? '' : ` kl ${Number(metrics['objective/kl']).toFixed(3)}`;
      progress.update(
        step,
        `reward ${lastReward.toFixed(3)}${kl} len ${Number(metrics['completions/mean_length']).toFixed(1)}`,
      );
      o.onStep?.(step, metrics);
      aborted = o.signal?.aborted === true && step < cfg.steps;
      if ((cfg.saveEvery > 0 && step % cfg.saveEvery === 0) || step === cfg.steps || aborted) checkpoint();
      if (aborted) break;
    }
  } finally {
    progress.stop();
    opt.dispose();
  }
  if (!aborted) {
    savePretrained(policy, o.outDir);
    p.tokenizer.save(o.outDir);
    say(`grpo: saved the policy to ${o.outDir}`);
  }
  for (const t of p.ref?.parameters() ?? []) t.dispose();
  return { steps: step, aborted, firstReward, lastReward };
}

function writeSamples(
  path: string,
  step: number,
  texts: string[],
  r: { samples: GrpoSample[]; completions: string[]; rewards: number[] },
): void {
  const lines = r.samples.map((s, b) =>
    JSON.stringify({
      step,
      prompt: texts[s.promptIndex],
      completion: r.completions[b],
      reward: r.rewards[b],
      advantage: s.advantage,
    }),
  );
  appendFileSync(path, `${lines.join('\n')}\n`);
}
