// The demo's training stages, each cached by the key of its config and inputs (stages.ts): the world's prose, base
// pretraining, demonstrations → SFT, samples ranked by the labelers → reward model, PPO and PPO-ptx.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPretrained, loadRewardModel, loadScalarPretrained } from '../models/index.js';
import { readPrompts } from '../rlhf/data.js';
import { type DpoConfig, dpoDefaults, trainDpo } from '../rlhf/dpo.js';
import { type GrpoConfig, grpoDefaults, trainGrpo } from '../rlhf/grpo.js';
import { type PPOConfig, PPOTrainer, ppoDefaults } from '../rlhf/ppo.js';
import { type RmConfig, rmDefaults, trainRewardModel } from '../rlhf/reward.js';
import { rewardModelFn } from '../rlhf/reward_fn.js';
import { type SftConfig, sftDefaults, trainSft } from '../rlhf/sft.js';
import type { RankingRecord, Store } from '../store/index.js';
import { bestOf } from '../store/ranking.js';
import { Rng } from '../tensor/index.js';
import { Formatter, Tokenizer } from '../tokenizer/index.js';
import { readMetrics } from '../train/metrics.js';
import { pretrain, pretrainDefaults } from '../train/pretrain.js';
import { corpusTokens } from '../train/tokens.js';
import type { DemoConfig, DemoSize, PretrainSettings } from './config.js';
import { chatAnswers } from './evaluate.js';
import {
  demonstrationRecords,
  heldoutPools,
  measureAgreement,
  promptRecords,
  rankingRecords,
  trainingPool,
  writeJsonlFile,
} from './labelers/index.js';
import { fileHash, type Stages } from './stages.js';
import { worldVerifier } from './verifier.js';
import { corpusText, pretrainCorpus, type Task, type World } from './world/index.js';

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export interface Ctx {
  size: DemoSize;
  cfg: DemoConfig;
  seed: number;
  out: string;
  world: World;
  stages: Stages;
  store: Store;
  say: (line: string) => void;
  corpusPath: string;
  heldoutCorpusPath: string;
}

/** The world's prose, for pretraining and (another draw) for measuring the alignment tax. */
export function writeCorpora(ctx: Pick<Ctx, 'cfg' | 'seed' | 'corpusPath' | 'heldoutCorpusPath'>): void {
  const { cfg, seed } = ctx;
  writeFileSync(ctx.corpusPath, corpusText(pretrainCorpus(new Rng(seed + 11), { sentences: cfg.corpusSentences })));
  writeFileSync(
    ctx.heldoutCorpusPath,
    corpusText(pretrainCorpus(new Rng(seed + 12), { sentences: cfg.heldoutSentences })),
  );
}

/** A base model pretrained on the world's prose: the demo's own (`base`), or the headline's bigger one. */
export async function pretrainBase(ctx: Ctx, name = 'base', settings: PretrainSettings = ctx.cfg.pretrain) {
  const inputs = { cfg: settings, seed: ctx.seed, corpus: fileHash(ctx.corpusPath) };
  return ctx.stages.run(
    name,
    inputs,
    (dir) => {
      const r = pretrain({
        ...pretrainDefaults,
        ...settings,
        model: 'gpt2',
        corpus: [ctx.corpusPath],
        out: dir,
        evalEvery: Math.max(1, Math.round(settings.steps / 10)),
        saveEvery: settings.steps,
        seed: ctx.seed,
      });
      return { parameters: r.parameters, initialValLoss: r.initialValLoss, finalValLoss: r.finalValLoss };
    },
    (r) =>
      `${r.parameters.toLocaleString('en-US')} parameters, val loss ${r.initialValLoss?.toFixed(3)} → ${r.finalValLoss.toFixed(3)}`,
  );
}

/** Training labelers write one demonstration per SFT prompt, into the store; the trainer reads the store's export. */
export async function writeDemonstrations(ctx: Ctx): Promise<string> {
  const demos = demonstrationRecords(
    ctx.world.sft,
    trainingPool(ctx.seed, { size: ctx.cfg.labelers }),
    new Rng(ctx.seed + 3),
  );
  await ctx.store.importDemonstrations(demos);
  const path = join(ctx.out, 'data', 'demonstrations.jsonl');
  writeJsonlFile(path, await ctx.store.exportDemonstrations('training'));
  ctx.say(`labelers: ${demos.length} demonstrations stored in labels.sqlite, exported to ${path}`);
  return path;
}

export async function trainSftStage(ctx: Ctx, base: string, demosPath: string) {
  const config: SftConfig = { ...sftDefaults, ...ctx.cfg.sft, seed: ctx.seed };
  return ctx.stages.run(
    'sft',
    { config, base, demos: fileHash(demosPath) },
    (dir) => {
      const r = trainSft({
        modelDir: ctx.stages.dir('base'),
        dataFile: demosPath,
        outDir: dir,
        config,
        log: ctx.say,
        quiet: true,
      });
      return { steps: r.steps, bestEpoch: r.bestEpoch, valLoss: r.bestValue, train: r.trainExamples };
    },
    (r) =>
      `${r.train} demonstrations, ${r.steps} steps, kept epoch ${(r.bestEpoch ?? 0) + 1} (val loss ${r.valLoss?.toFixed(3)})`,
  );
}

interface SampleSet {
  /** The prompt of a world task. */
  task: string;
  responses: string[];
}

interface SampleSets {
  /** Samples per RM prompt, for the training labelers to rank. */
  rm: SampleSet[];
  /** Samples per evaluation prompt, for the held-out labelers (the RM's held-out accuracy). */
  heldout: SampleSet[];
}

/**
 * Up to K distinct non-empty samples per prompt from a policy at several temperatures (lowest first, repeats
 * dropped: a ranking of two identical answers says nothing), as the paper's labelers were shown: the SFT model's in the first
 * round (for RM and evaluation prompts), the round-one PPO policy's in the second (RM prompts only). Prompts with
 * fewer than two distinct samples are left out.
 */
export async function sampleForRanking(ctx: Ctx, name: string, policy: { key: string; dir: string }, heldout: boolean) {
  const { k, maxNewTokens, sampling } = ctx.cfg;
  return ctx.stages.run(
    name,
    { policy: policy.key, k, maxNewTokens, sampling, seed: ctx.seed, world: ctx.cfg.world, heldout },
    (dir) => {
      const draw = (tasks: readonly Task[], seed: number) => {
        const drawn = sampling.map(({ temperature, n }, s) => {
          const repeated = tasks.flatMap((t) => Array.from({ length: n }, () => t));
          const texts = chatAnswers(policy.dir, repeated, { maxNewTokens, temperature, seed: seed + s });
          return tasks.map((_, i) => texts.slice(i * n, (i + 1) * n));
        });
        const sets = tasks.map((task, i) => ({
          task: task.prompt,
          // An empty sample (only EOS) is no candidate: the store refuses degenerate responses.
          responses: [...new Set(drawn.flatMap((d) => d[i]).filter((r) => r !== ''))].slice(0, k),
        }));
        return sets.filter((s) => s.responses.length >= 2);
      };
      const salt = name === 'samples' ? 0 : 100;
      const sets: SampleSets = {
        rm: draw(ctx.world.rm, ctx.seed + 21 + salt),
        heldout: heldout ? draw(ctx.world.eval, ctx.seed + 22) : [],
      };
      writeFileSync(join(dir, 'samples.json'), JSON.stringify(sets));
      const distinct = mean(sets.rm.map((s) => s.responses.length));
      return { prompts: sets.rm.length, heldoutPrompts: sets.heldout.length, distinct };
    },
    (r) =>
      `${r.prompts} + ${r.heldoutPrompts} held-out prompts with ${r.distinct.toFixed(2)} distinct samples each (K ≤ ${ctx.cfg.k})`,
  );
}

/**
 * Labelers rank the samples into the store (training labelers on RM prompts; the held-out pools' labelers, taking
 * turns, on evaluation prompts, split "heldout"); the store's exports are what the reward model trains and is tested
 * on. Agreement is measured as the paper did: every labeler of a group ranks every sample set.
 */
export async function rankSamples(ctx: Ctx, stage: string, trainFile: string) {
  const sets = JSON.parse(readFileSync(join(ctx.stages.dir(stage), 'samples.json'), 'utf8')) as SampleSets;
  const pool = { size: ctx.cfg.labelers };
  const byPrompt = new Map([...ctx.world.rm, ...ctx.world.eval].map((t) => [t.prompt, t]));
  const tasksOf = (sets: SampleSet[]) => sets.map((s) => byPrompt.get(s.task)!);
  const responsesOf = (sets: SampleSet[]) => sets.map((s) => s.responses);
  const train = rankingRecords(tasksOf(sets.rm), responsesOf(sets.rm), trainingPool(ctx.seed, pool));
  const heldoutJudges = Object.values(heldoutPools(ctx.seed, pool)).flat();
  const heldout: RankingRecord[] = rankingRecords(tasksOf(sets.heldout), responsesOf(sets.heldout), heldoutJudges).map(
    (r) => ({ ...r, split: 'heldout' }),
  );
  await ctx.store.importRankings(train);
  await ctx.store.importRankings(heldout);
  // Each export holds every round's rankings so far.
  const trainPath = join(ctx.out, 'data', trainFile);
  const heldoutPath = join(ctx.out, 'data', 'rankings_heldout.jsonl');
  writeJsonlFile(trainPath, await ctx.store.exportRankings('training'));
  if (heldout.length > 0) writeJsonlFile(heldoutPath, await ctx.store.exportRankings('heldout'));
  if (sets.heldout.length === 0) {
    ctx.say(`labelers: ${train.length} more rankings of the policy's samples stored; ${trainPath} holds every round`);
    return { trainPath, heldoutPath, agreement: null, heldoutAgreement: null };
  }
  // Every training labeler ranks every sample set, as the paper measured inter-labeler agreement.
  const agreement = measureAgreement(trainingPool(ctx.seed + 1, pool), tasksOf(sets.rm), responsesOf(sets.rm));
  const heldoutAgreement = measureAgreement(
    Object.values(heldoutPools(ctx.seed + 1, pool)).flat(),
    tasksOf(sets.heldout),
    responsesOf(sets.heldout),
  );
  ctx.say(
    `labelers: ${train.length} + ${heldout.length} held-out rankings stored and exported; agreement: training ` +
      `${(100 * agreement.agreement).toFixed(1)} % ± ${(100 * agreement.sd).toFixed(1)}, held-out ` +
      `${(100 * heldoutAgreement.agreement).toFixed(1)} % ± ${(100 * heldoutAgreement.sd).toFixed(1)}`,
  );
  return { trainPath, heldoutPath, agreement, heldoutAgreement };
}

export async function trainRmStage(ctx: Ctx, name: string, sft: string, trainPath: string, heldoutPath: string) {
  const config: RmConfig = { ...rmDefaults, ...ctx.cfg.rm, seed: ctx.seed };
  return ctx.stages.run(
    name,
    { config, sft, train: fileHash(trainPath), heldout: fileHash(heldoutPath) },
    (dir) => {
      const r = trainRewardModel({
        modelDir: ctx.stages.dir('sft'),
        dataFile: trainPath,
        valFile: heldoutPath,
        outDir: dir,
        config,
        log: ctx.say,
        quiet: true,
      });
      return { steps: r.steps, rankings: r.trainRankings, heldoutAccuracy: r.val!.accuracy, heldoutLoss: r.val!.loss };
    },
    (r) =>
      `${r.rankings} rankings, ${r.steps} steps, held-out accuracy ${(100 * r.heldoutAccuracy).toFixed(1)} % (loss ${r.heldoutLoss.toFixed(3)})`,
  );
}

/** Another stage's model, as a stage reads it: that stage's cache key and folder name. */
export interface StageRef {
  key: string;
  stage: string;
}

/**
 * Rejection sampling, as Llama 2 did before PPO, with the labelers as the judge: SFT trained further on each ranked
 * set's top pick, when its labeler rated it at least `minLikert` of 7 (a set's top pick may still be poor when all
 * of its samples are). Every round's rankings, so the samples of SFT and of the round-one PPO policy.
 */
export async function trainRsStage(ctx: Ctx, sft: string, trainPath: string) {
  const { minLikert, ...rs } = ctx.cfg.rejectionSampling;
  const config: SftConfig = { ...sftDefaults, ...ctx.cfg.sft, ...rs, seed: ctx.seed };
  return ctx.stages.run(
    'rs',
    { config, minLikert, sft, rankings: fileHash(trainPath) },
    async (dir) => {
      const rankings = await ctx.store.exportRankings('training');
      const picks = new Map<string, { prompt: string; completion: string }>();
      for (const r of rankings) {
        const top = bestOf(r.ranking);
        if ((r.likert?.[top] ?? 0) < minLikert) continue;
        const pick = { prompt: r.prompt, completion: r.responses[top] };
        picks.set(JSON.stringify(pick), pick);
      }
      const dataFile = join(ctx.out, 'data', 'rs_demonstrations.jsonl');
      writeJsonlFile(dataFile, [...picks.values()]);
      const r = trainSft({
        modelDir: ctx.stages.dir('sft'),
        dataFile,
        outDir: dir,
        config,
        log: ctx.say,
        quiet: true,
      });
      return { rankings: rankings.length, kept: picks.size, steps: r.steps, bestEpoch: r.bestEpoch };
    },
    (r) =>
      `${r.kept} of ${r.rankings} ranked sets' top picks rated ≥ ${minLikert}/7, ${r.steps} steps, kept epoch ` +
      `${(r.bestEpoch ?? 0) + 1}`,
  );
}

/** The RL stages' prompts (the world's PPO split) as a `{"prompt"}` JSONL file. */
function ppoPromptsFile(ctx: Ctx): string {
  const path = join(ctx.out, 'data', 'ppo_prompts.jsonl');
  writeJsonlFile(path, promptRecords(ctx.world.ppo));
  return path;
}

/** PPO (or PPO-ptx, by name) from `init`, the KL penalty's reference being `init` too. */
export async function trainPpoStage(ctx: Ctx, name: string, init: StageRef, rm: StageRef) {
  const ptx = name === 'ppo_ptx';
  const config: PPOConfig = {
    ...ppoDefaults,
    ...ctx.cfg.ppo,
    ptxCoef: ptx ? ctx.cfg.ptxCoef : 0,
    ptxSeqLen: ctx.cfg.pretrain.seq,
    seed: ctx.seed,
  };
  const promptsPath = ppoPromptsFile(ctx);
  const inputs = {
    config,
    init: init.key,
    rm: rm.key,
    prompts: fileHash(promptsPath),
    corpus: ptx ? fileHash(ctx.corpusPath) : null,
  };
  return ctx.stages.run(
    name,
    inputs,
    (dir) => {
      const initDir = ctx.stages.dir(init.stage);
      const rmDir = ctx.stages.dir(rm.stage);
      const tokenizer = Tokenizer.fromDir(initDir);
      const formatter = new Formatter(tokenizer, initDir);
      const trainer = new PPOTrainer({
        policy: loadPretrained(initDir),
        ref: loadPretrained(initDir),
        value: loadScalarPretrained(rmDir),
        reward: rewardModelFn(loadRewardModel(rmDir).model, formatter.padId),
        formatter,
        prompts: readPrompts(promptsPath),
        ptxTokens: ptx ? corpusTokens([ctx.corpusPath], tokenizer) : null,
        config,
        outDir: dir,
        quiet: true,
      });
      const history = trainer
        .train()
        .map((m) => ({ score: Number(m['objective/scores']), kl: Number(m['objective/kl']) }));
      trainer.save(dir);
      trainer.dispose();
      const tail = history.slice(-Math.max(1, Math.floor(history.length / 4)));
      return {
        steps: trainer.stepsDone,
        firstScore: history[0].score,
        lastScore: mean(tail.map((h) => h.score)),
        lastKl: mean(tail.map((h) => h.kl)),
      };
    },
    (r) =>
      `${r.steps} steps, RM score ${r.firstScore.toFixed(3)} → ${r.lastScore.toFixed(3)}, KL ${r.lastKl.toFixed(3)}`,
  );
}

/** DPO from `init` on the training labelers' rankings (every ranked pair), the reference being `init`. */
export async function trainDpoStage(ctx: Ctx, init: StageRef, trainPath: string, heldoutPath: string) {
  const config: DpoConfig = { ...dpoDefaults, ...ctx.cfg.dpo, valFraction: 0, seed: ctx.seed };
  return ctx.stages.run(
    'dpo',
    { config, init: init.key, train: fileHash(trainPath), heldout: fileHash(heldoutPath) },
    (dir) => {
      const r = trainDpo({
        modelDir: ctx.stages.dir(init.stage),
        dataFile: trainPath,
        valFile: heldoutPath,
        outDir: dir,
        config,
        log: ctx.say,
        quiet: true,
      });
      // The held-out pairs are the held-out labelers' rankings: DPO's implicit reward model judged on them.
      return { steps: r.steps, pairs: r.trainPairs, heldoutAccuracy: Number(r.eval['eval/rewards/accuracies']) };
    },
    (r) =>
      `${r.pairs} pairs, ${r.steps} steps, implicit reward's held-out accuracy ${(100 * r.heldoutAccuracy).toFixed(1)} %`,
  );
}

/**
 * GRPO from `init` on the PPO prompts, rewarded by the world's answer checker (1 for a right answer in the asked
 * format): reinforcement learning from a verifiable reward instead of from the labelers' preferences.
 */
export async function trainGrpoStage(ctx: Ctx, init: StageRef) {
  const config: GrpoConfig = {
    ...grpoDefaults,
    ...ctx.cfg.grpo,
    maxNewTokens: ctx.cfg.maxNewTokens,
    sampleEvery: 0,
    saveEvery: 0,
    seed: ctx.seed,
  };
  const promptsPath = ppoPromptsFile(ctx);
  return ctx.stages.run(
    'grpo',
    { config, init: init.key, prompts: fileHash(promptsPath) },
    async (dir) => {
      const r = await trainGrpo({
        policyDir: ctx.stages.dir(init.stage),
        prompts: promptsPath,
        outDir: dir,
        config,
        verifier: worldVerifier(ctx.world.ppo),
        log: ctx.say,
        quiet: true,
      });
      // A step holds few prompts, so its reward is noisy: the first and the last quarter's means.
      const rewards = readMetrics(join(dir, 'metrics.jsonl'))
        .map((m) => Number(m.reward))
        .filter(Number.isFinite);
      const quarter = Math.max(1, Math.floor(rewards.length / 4));
      return {
        steps: r.steps,
        firstReward: mean(rewards.slice(0, quarter)),
        lastReward: mean(rewards.slice(-quarter)),
      };
    },
    (r) => `${r.steps} steps, checker reward ${r.firstReward.toFixed(3)} → ${r.lastReward.toFixed(3)} (quarter means)`,
  );
}
