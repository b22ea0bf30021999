// GRPO (Shao et al. 2024, DeepSeekMath) and RLOO (Ahmadian et al. 2024): G completions per prompt, no value
// model. Each completion's advantage comes from its own group: GRPO (r − mean)/(std + eps), RLOO r − the mean of
// the other G − 1. The policy takes PPO's clipped token-level objective (rollout machinery and loss imported from
// ppo.ts / ppo_loss.ts); KL to the reference (k3) is either a loss term β·KL or subtracted from the reward.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate, savePretrained } from '../models/index.js';
import { AdamW, clipGradNorm } from '../nn/index.js';
import { add, backward, exp, mul, noGrad, Rng, scale, sub, sum, type Tensor, tidy } from '../tensor/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { listCheckpoints, loadLatestCheckpoint, saveCheckpoint } from '../train/checkpoint.js';
import { saveRunConfig } from '../train/config.js';
import { type Metrics, MetricsLog } from '../train/metrics.js';
import { Progress } from '../train/progress.js';
import { checkModelFolder, Formatter, loadCausalLM, loadRewardModel, shuffled } from './data.js';
import { klPerToken } from './kl.js';
import {
  meanEntropy,
  type PromptSet,
  pack,
  type Rollout,
  readPrompts,
  tokenLogps,
  truncateSamples,
  ungrid,
} from './ppo.js';
import { policyLoss } from './ppo_loss.js';
import {
  callVerifier,
  loadVerifierModule,
  type RewardSource,
  rewardModelSource,
  type Verifier,
  verifierSource,
  weightedReward,
} from './reward_sources.js';

export type AdvantageEstimator = 'grpo' | 'rloo';
export const ADVANTAGE_ESTIMATORS: readonly AdvantageEstimator[] = ['grpo', 'rloo'];

export interface GrpoConfig {
  /** Iterations: each samples groupSize completions for batchSize prompts and optimises on them. */
  steps: number;
  /** Prompts per iteration. */
  batchSize: number;
  /** G: completions per prompt. */
  groupSize: number;
  /** Completions per gradient step. */
  miniBatchSize: number;
  /** μ: passes over each iteration's completions (1: on-policy, the ratio is 1 and the clip never binds). */
  iterations: number;
  estimator: AdvantageEstimator;
  /** GRPO: divide by the group's standard deviation (false: Dr. GRPO's plain r − mean). */
  scaleRewards: boolean;
  lr: number;
  weightDecay: number;
  maxGradNorm: number;
  maxNewTokens: number;
  temperature: number;
  /** β: weight of the k3 KL to the reference (0: no reference model is loaded). */
  beta: number;
  /** Subtract β·KL (summed over the completion) from the reward instead of adding β·KL to the loss. */
  klInReward: boolean;
  clipRange: number;
  /** Weights of the reward sources, in the order reward model, reward module (empty: all 1). */
  rewardWeights: number[];
  /** Checkpoint every this many iterations (0: only at the end or when stopped). */
  saveEvery: number;
  /** Write the completions of every this many iterations to samples.jsonl (0: never). */
  sampleEvery: number;
  seed: number;
}

/** TRL's GRPO settings where it has them (G 8, ε 0.2, lr 1e-6), β 0.04 as in DeepSeekMath. */
export const grpoDefaults: GrpoConfig = {
  steps: 100,
  batchSize: 4,
  groupSize: 8,
  miniBatchSize: 16,
  iterations: 1,
  estimator: 'grpo',
  scaleRewards: true,
  lr: 1e-6,
  weightDecay: 0,
  maxGradNorm: 1,
  maxNewTokens: 64,
  temperature: 1,
  beta: 0.04,
  klInReward: false,
  clipRange: 0.2,
  rewardWeights: [],
  saveEvery: 50,
  sampleEvery: 10,
  seed: 0,
};

export function checkGrpoConfig(c: GrpoConfig, source = 'grpo config'): void {
  const bad = (field: string, want: string) =>
    new Error(`${source}: field "${field}" must be ${want}, got ${JSON.stringify((c as never)[field])}`);
  for (const k of ['steps', 'batchSize', 'miniBatchSize', 'iterations', 'maxNewTokens'] as const)
    if (!Number.isInteger(c[k]) || c[k] < 1) throw bad(k, 'an integer >= 1');
  if (!Number.isInteger(c.groupSize) || c.groupSize < 2) throw bad('groupSize', 'an integer >= 2 (a group to compare)');
  for (const k of ['saveEvery', 'sampleEvery', 'seed'] as const)
    if (!Number.isInteger(c[k]) || c[k] < 0) throw bad(k, 'an integer >= 0');
  if (c.miniBatchSize > c.batchSize * c.groupSize)
    throw bad('miniBatchSize', `at most batchSize × groupSize (${c.batchSize * c.groupSize})`);
  if (!ADVANTAGE_ESTIMATORS.includes(c.estimator))
    throw bad('estimator', ADVANTAGE_ESTIMATORS.map((e) => `"${e}"`).join(' or '));
  for (const k of ['lr', 'weightDecay', 'maxGradNorm', 'beta'] as const)
    if (!(c[k] >= 0) || !Number.isFinite(c[k])) throw bad(k, 'a finite number >= 0');
  for (const k of ['temperature', 'clipRange'] as const) if (!(c[k] > 0)) throw bad(k, '> 0');
  if (!Array.isArray(c.rewardWeights) || !c.rewardWeights.every(Number.isFinite))
    throw bad('rewardWeights', 'a list of numbers');
}

// ---- advantages ----

/**
 * Advantages of consecutive groups of G rewards. GRPO: (r − mean)/(std + eps) with the unbiased std (as TRL;
 * without scaling, r − mean). RLOO: r − mean of the group's other G − 1 rewards.
 */
export function groupAdvantages(
  rewards: readonly number[],
  groupSize: number,
  estimator: AdvantageEstimator,
  opts: { scaleRewards?: boolean; eps?: number } = {},
): number[] {
  const G = groupSize;
  if (!Number.isInteger(G) || G < 2 || rewards.length % G !== 0)
    throw new Error(`groupAdvantages: ${rewards.length} rewards do not form groups of ${G} (G >= 2)`);
  const out: number[] = [];
  for (let at = 0; at < rewards.length; at += G) {
    const group = rewards.slice(at, at + G);
    const total = group.reduce((a, b) => a + b, 0);
    const mean = total / G;
    if (estimator === 'rloo') {
      for (const r of group) out.push(r - (total - r) / (G - 1));
      continue;
    }
    const std = Math.sqrt(group.reduce((a, r) => a + (r - mean) ** 2, 0) / (G - 1));
    const div = opts.scaleRewards === false ? 1 : std + (opts.eps ?? 1e-4);
    for (const r of group) out.push((r - mean) / div);
  }
  return out;
}

/**
 * Mean over the masked tokens of the k3 estimate of KL(π ‖ π_ref), differentiable in logp:
 * exp(ref − logp) − (ref − logp) − 1.
 */
export function k3Loss(logp: Tensor, refLogp: Tensor, mask: Tensor): Tensor {
  let n = 0;
  for (const m of mask.f32) n += m;
  const d = sub(refLogp, logp);
  const k3 = add(sub(exp(d), d), -1);
  return scale(sum(mul(k3, mask)), 1 / Math.max(n, 1));
}

// ---- the trainer ----

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

// One sampled completion with what the update needs.
interface Sample extends Rollout {
  promptIndex: number;
  oldLogp: number[];
  advantage: number;
}

/** Everything checked and loaded before any compute: config, folders, prompts, reward sources. */
async function prepareGrpo(o: GrpoOptions) {
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

type Prepared = Awaited<ReturnType<typeof prepareGrpo>>;

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

function avg(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function decode(tokenizer: Tokenizer, ids: number[], eos: number): string {
  return tokenizer.decode(ids.filter((id) => id !== eos && tokenizer.idToToken(id) !== null));
}

/** Samples G completions per prompt and scores them: old log-probs, rewards, KL, group advantages. */
async function rollout(p: Prepared, cfg: GrpoConfig, batch: number[], rng: Rng) {
  const { policy, ref, tokenizer, fmt } = p;
  const promptIndex = batch.flatMap((i) => Array<number>(cfg.groupSize).fill(i));
  const gen = generate(
    policy,
    promptIndex.map((i) => p.promptIds[i]),
    {
      maxNewTokens: cfg.maxNewTokens,
      temperature: cfg.temperature,
      seed: rng.nextU32(),
      eosTokenIds: [fmt.eosId],
      padTokenId: fmt.padId,
    },
  );
  const rows: Rollout[] = promptIndex.map((i, b) => ({ prompt: p.promptIds[i], response: gen.tokens[b] }));
  const oldLogp: number[][] = [];
  const refLogp: number[][] = [];
  let entropy = 0;
  for (let at = 0; at < rows.length; at += cfg.miniBatchSize) {
    const chunk = rows.slice(at, at + cfg.miniBatchSize);
    noGrad(() =>
      tidy(() => {
        const packed = pack(chunk);
        const pol = tokenLogps(policy, packed, cfg.temperature);
        oldLogp.push(...ungrid(pol.logp, chunk));
        entropy += (meanEntropy(pol.logits, packed.respMask) * chunk.length) / rows.length;
        if (ref) refLogp.push(...ungrid(tokenLogps(ref, packed, cfg.temperature).logp, chunk));
      }),
    );
  }
  const promptTexts = promptIndex.map((i) => p.prompts.texts[i]);
  const completions = rows.map((r) => decode(tokenizer, r.response, fmt.eosId));
  const scored = await weightedReward(p.sources, p.weights, promptTexts, completions, {
    prompts: rows.map((r) => r.prompt),
    responses: rows.map((r) => r.response),
  });
  const kl = ref ? rows.map((_, b) => klPerToken(oldLogp[b], refLogp[b], 'k3').reduce((a, x) => a + x, 0)) : null;
  const rewards = kl && cfg.klInReward ? scored.total.map((r, b) => r - cfg.beta * kl[b]) : scored.total;
  const advantages = groupAdvantages(rewards, cfg.groupSize, cfg.estimator, { scaleRewards: cfg.scaleRewards });
  const samples: (Sample & { refLogp: number[] })[] = rows.map((r, b) => ({
    ...r,
    promptIndex: promptIndex[b],
    oldLogp: oldLogp[b],
    refLogp: refLogp[b] ?? [],
    advantage: advantages[b],
  }));
  const groupStd: number[] = [];
  for (let at = 0; at < rewards.length; at += cfg.groupSize) {
    const g = scored.total.slice(at, at + cfg.groupSize);
    const m = avg(g);
    groupStd.push(Math.sqrt(g.reduce((a, r) => a + (r - m) ** 2, 0) / (g.length - 1)));
  }
  const metrics: Metrics = {
    reward: avg(scored.total),
    reward_std: avg(groupStd),
    ...scored.means,
    frac_reward_zero_std: avg(groupStd.map((s) => (s === 0 ? 1 : 0))),
    ...(kl ? { 'objective/kl': avg(kl) } : {}),
    'objective/entropy': entropy,
    'completions/mean_length': avg(rows.map((r) => r.response.length)),
    'completions/eos_fraction': avg(gen.finishReasons.map((f) => (f === 'eos' ? 1 : 0))),
  };
  return { samples, completions, rewards: scored.total, metrics };
}

/** μ passes of shuffled minibatches: the clipped objective with the group advantage at every token, + β·k3. */
function optimize(p: Prepared, cfg: GrpoConfig, opt: AdamW, samples: (Sample & { refLogp: number[] })[], rng: Rng) {
  const stats: Record<string, number[]> = {};
  const note = (k: string, v: number) => {
    stats[k] ??= [];
    stats[k].push(v);
  };
  const klLoss = p.ref !== null && !cfg.klInReward && cfg.beta > 0;
  for (let it = 0; it < cfg.iterations; it++) {
    const order = shuffled(samples.length, rng);
    for (let at = 0; at < order.length; at += cfg.miniBatchSize) {
      const mb = order.slice(at, at + cfg.miniBatchSize).map((i) => samples[i]);
      tidy(() => {
        const packed = pack(mb);
        const { logp } = tokenLogps(p.policy, packed, cfg.temperature);
        const advantages = packed.grid((e) => e.response.map(() => e.advantage));
        const pl = policyLoss(
          logp,
          packed.grid((e) => e.oldLogp),
          advantages,
          packed.respMask,
          cfg.clipRange,
        );
        let loss = pl.loss;
        if (klLoss)
          loss = add(
            loss,
            scale(
              k3Loss(
                logp,
                packed.grid((e) => e.refLogp),
                packed.respMask,
              ),
              cfg.beta,
            ),
          );
        note('policy/loss', pl.loss.item());
        note('loss', loss.item());
        note('policy/clipfrac', pl.clipfrac);
        note('policy/approxkl', pl.approxkl);
        backward(loss);
      });
      if (cfg.maxGradNorm > 0) note('policy/grad_norm', clipGradNorm(p.policy.parameters(), cfg.maxGradNorm));
      opt.step(cfg.lr);
      opt.zeroGrad();
    }
  }
  return Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, avg(v)]));
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
  } else saveRunConfig(o.outDir, 'grpo_config.json', cfg);
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
      const r = await rollout(p, cfg, nextBatch(), rng);
      const t1 = performance.now();
      const m = optimize(p, cfg, opt, r.samples, rng);
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
  r: { samples: Sample[]; completions: string[]; rewards: number[] },
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
