// `instructkit demo`: the InstructGPT paper in miniature. A miniature world with checkable tasks, simulated labelers
// standing in for people, and every step of the paper on a CPU: pretrain a base model on the world's prose →
// labelers write demonstrations → SFT → K samples per prompt ranked by labelers → reward model → PPO and PPO-ptx →
// evaluation by held-out labelers on held-out prompts → report/index.html. Labels go through the platform's store
// (SQLite in the run folder) and the trainers read the store's JSONL exports, as they would read real labels.
//
// Run folder (--out):
//   data/            corpus, held-out corpus, the store's exports (demonstrations, rankings, held-out rankings)
//   labels.sqlite    the labeling store      report/   index.html + PNGs      results.json   everything measured
//   base/ sft/ samples/ rm/ ppo/ ppo_ptx/ eval/   one folder per stage, each with stage.json (its cache key)
//
// Caching: a stage's key hashes its config and the keys (or file hashes) of its inputs; a stage whose stage.json
// holds the same key is skipped, so a second run reuses the base model and every stage whose inputs did not change.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadPretrained, loadRewardModel, loadScalarPretrained } from '../models/index.js';
import { type ReportData, writeReport } from '../report/html.js';
import { readPrompts } from '../rlhf/data.js';
import { type PPOConfig, PPOTrainer, ppoDefaults } from '../rlhf/ppo.js';
import { type RmConfig, rmDefaults, trainRewardModel } from '../rlhf/reward.js';
import { rewardModelFn } from '../rlhf/reward_fn.js';
import { type SftConfig, sftDefaults, trainSft } from '../rlhf/sft.js';
import { openSqliteStore, type RankingRecord, type Store } from '../store/index.js';
import { Rng } from '../tensor/index.js';
import { Formatter, Tokenizer } from '../tokenizer/index.js';
import { readMetrics } from '../train/metrics.js';
import { pretrain, pretrainDefaults, type SizePreset } from '../train/pretrain.js';
import { formatSeconds } from '../train/progress.js';
import { corpusTokens } from '../train/tokens.js';
import {
  chatAnswers,
  complete,
  corpusLoss,
  MODEL_LABELS,
  MODELS,
  type ModelName,
  type ModelStats,
  modelStats,
  type PhrasingSplit,
  type PoolWinRates,
  PROBE_KINDS,
  type ProbeAccuracy,
  type ProbeKind,
  poolWinRates,
  probePairs,
  release,
  rmProbeAccuracy,
} from './evaluate.js';
import {
  type AgreementReport,
  demonstrationRecords,
  HELDOUT_POOL_NAMES,
  type HeldoutPoolName,
  heldoutPool,
  heldoutPools,
  measureAgreement,
  promptRecords,
  rankingRecords,
  trainingPool,
  type WinRate,
  writeJsonlFile,
} from './labelers/index.js';
import { fileHash, Stages } from './stages.js';
import {
  buildWorld,
  corpusText,
  FEW_SHOT_STOP,
  fewShotExamples,
  fewShotPrompt,
  pretrainCorpus,
  type SplitName,
  type Task,
  type World,
} from './world/index.js';

export const DEMO_SIZES = ['tiny', 'small'] as const;
export type DemoSize = (typeof DEMO_SIZES)[number];

/** Everything a demo run depends on besides the seed; one per size. */
export interface DemoConfig {
  /** Prompts per split of the world. */
  world: Record<SplitName, number>;
  /** Sentences of pretraining prose, and of held-out prose for the alignment tax. */
  corpusSentences: number;
  heldoutSentences: number;
  /** Labelers per pool (training and held-out). */
  labelers: number;
  pretrain: {
    size: SizePreset;
    vocabSize: number;
    steps: number;
    batchSize: number;
    seq: number;
    lr: number;
    minLrRatio: number;
  };
  sft: Partial<SftConfig>;
  /** Samples per prompt that the labelers rank. */
  k: number;
  /**
   * Rounds of rankings: 1 (the paper's first data) or 2 (iterated RLHF: the round-one PPO policy's samples ranked
   * too, and the reward model trained again on both rounds before the final PPO runs).
   */
  rounds: 1 | 2;
  rm: Partial<RmConfig>;
  ppo: Partial<PPOConfig>;
  /** γ_ptx of the PPO-ptx run. */
  ptxCoef: number;
  /**
   * Draws per prompt at each sampling temperature (0 = greedy) for the labelers to rank, as the paper drew from
   * several policies: low temperatures add likely-correct answers, high ones add varied wrong ones, so that the
   * labelers' rankings separate answers by quality rather than by noise.
   */
  sampling: { temperature: number; n: number }[];
  /** Longest answer generated for ranking and evaluation. */
  maxNewTokens: number;
  /** Solved examples in the prompted baseline's few-shot prompt. */
  shots: number;
  /** Rows of the report's sample table. */
  samplesShown: number;
}

const ppoCommon: Partial<PPOConfig> = {
  sampleEvery: 0,
  saveEvery: 0,
  // Strong enough that PPO drops the writers' habits without drifting into answers the reward model cannot judge.
  klCoef: 0.3,
};

const sampling = [
  { temperature: 0, n: 1 },
  { temperature: 0.7, n: 2 },
  { temperature: 1, n: 3 },
];

// K = 9, the paper's largest: 36 comparisons per ranking. Measured at tiny (seed 0): the reward model's held-out
// accuracy 60 → 66 % and "I do not know" over an invented answer 0 → 89 % against K = 4.
const sampling9 = [
  { temperature: 0, n: 1 },
  { temperature: 0.7, n: 3 },
  { temperature: 1, n: 5 },
];

export const DEMO_CONFIGS: Record<DemoSize, DemoConfig> = {
  tiny: {
    // Demonstrations carry the writers' habits, so SFT needs more of them to learn the answers underneath.
    world: { sft: 2000, rm: 500, ppo: 300, eval: 240 },
    corpusSentences: 12_000,
    heldoutSentences: 1_500,
    labelers: 5,
    pretrain: { size: 'tiny', vocabSize: 1024, steps: 1000, batchSize: 16, seq: 128, lr: 3e-3, minLrRatio: 0.1 },
    sft: { epochs: 12, batchSize: 16, lr: 2e-3, dropout: 0, valFraction: 0.1, warmupRatio: 0.05 },
    k: 6,
    rounds: 1,
    rm: { epochs: 3, batchSize: 16, lr: 1e-3, valFraction: 0 },
    ppo: { ...ppoCommon, steps: 60, batchSize: 16, miniBatchSize: 8, ppoEpochs: 2, lr: 1e-4, valueLr: 5e-4 },
    ptxCoef: 0.2,
    sampling,
    maxNewTokens: 32,
    shots: 2,
    samplesShown: 12,
  },
  small: {
    world: { sft: 4000, rm: 2000, ppo: 600, eval: 600 },
    corpusSentences: 30_000,
    heldoutSentences: 2_000,
    labelers: 5,
    pretrain: { size: 'tiny', vocabSize: 1024, steps: 3000, batchSize: 16, seq: 128, lr: 3e-3, minLrRatio: 0.1 },
    sft: { epochs: 16, batchSize: 16, lr: 2e-3, dropout: 0, valFraction: 0.1, warmupRatio: 0.05 },
    k: 9,
    rounds: 1,
    rm: { epochs: 2, batchSize: 16, lr: 1e-3, valFraction: 0 },
    ppo: { ...ppoCommon, steps: 200, batchSize: 32, miniBatchSize: 16, ppoEpochs: 2, lr: 1e-4, valueLr: 5e-4 },
    ptxCoef: 0.2,
    sampling: sampling9,
    maxNewTokens: 32,
    shots: 2,
    samplesShown: 16,
  },
};

export interface DemoOptions {
  size: DemoSize;
  /** Run folder (default runs/demo). */
  out: string;
  seed: number;
  /** Redo every stage, ignoring cached ones. */
  fresh?: boolean;
  /** Overrides of the size's config (tests). */
  config?: Partial<DemoConfig>;
  /** Progress and stage summaries (default: stderr). */
  log?: (line: string) => void;
}

/** The demo's final line. */
export interface DemoSummary {
  /** Each model's win rate against SFT on held-out phrasings, as judged by the held-out pool that likes it least. */
  winrate_vs_sft: Record<ModelName, number>;
  /** The same per held-out pool. */
  winrate_vs_sft_by_pool: Record<HeldoutPoolName, Record<ModelName, number>>;
  /** Share of evaluation prompts answered right, per model, on training and on held-out phrasings. */
  correct: Record<ModelName, Record<PhrasingSplit, number>>;
  /** Share of prompts about towns that do not exist on which each model says it does not know. */
  abstain: Record<ModelName, number>;
  /** Reward-model accuracy on held-out labelers' rankings, beside those labelers' own pairwise agreement. */
  rm_heldout_acc: number;
  heldout_labeler_agreement: number;
  /** Agreement among the training labelers. */
  labeler_agreement: number;
  /** Reward-model accuracy on probe pairs: right vs wrong in equal style, plain vs habit, abstain vs invent. */
  rm_acc_correctness: number;
  rm_acc_style: number;
  rm_acc_honesty: number;
  /** Change in held-out prose loss from the base model (the paper's alignment tax; SFT's is its forgetting). */
  tax_vs_base: Record<'sft' | 'ppo' | 'ppo_ptx', number>;
  /** Change in held-out prose loss from SFT. */
  ptx_tax: number;
  ppo_tax: number;
  wall_s: number;
  report: string;
}

// ---------------------------------------------------------------- helpers

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

// ---------------------------------------------------------------- the stages

interface Ctx {
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
function writeCorpora(ctx: Pick<Ctx, 'cfg' | 'seed' | 'corpusPath' | 'heldoutCorpusPath'>): void {
  const { cfg, seed } = ctx;
  writeFileSync(ctx.corpusPath, corpusText(pretrainCorpus(new Rng(seed + 11), { sentences: cfg.corpusSentences })));
  writeFileSync(
    ctx.heldoutCorpusPath,
    corpusText(pretrainCorpus(new Rng(seed + 12), { sentences: cfg.heldoutSentences })),
  );
}

async function pretrainBase(ctx: Ctx) {
  const inputs = { cfg: ctx.cfg.pretrain, seed: ctx.seed, corpus: fileHash(ctx.corpusPath) };
  return ctx.stages.run(
    'base',
    inputs,
    (dir) => {
      const r = pretrain({
        ...pretrainDefaults,
        ...ctx.cfg.pretrain,
        model: 'gpt2',
        corpus: [ctx.corpusPath],
        out: dir,
        evalEvery: Math.max(1, Math.round(ctx.cfg.pretrain.steps / 10)),
        saveEvery: ctx.cfg.pretrain.steps,
        seed: ctx.seed,
      });
      return { parameters: r.parameters, initialValLoss: r.initialValLoss, finalValLoss: r.finalValLoss };
    },
    (r) =>
      `${r.parameters.toLocaleString('en-US')} parameters, val loss ${r.initialValLoss?.toFixed(3)} → ${r.finalValLoss.toFixed(3)}`,
  );
}

/** Training labelers write one demonstration per SFT prompt, into the store; the trainer reads the store's export. */
async function writeDemonstrations(ctx: Ctx): Promise<string> {
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

async function trainSftStage(ctx: Ctx, base: string, demosPath: string) {
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
async function sampleForRanking(ctx: Ctx, name: string, policy: { key: string; dir: string }, heldout: boolean) {
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
async function rankSamples(ctx: Ctx, stage: string, trainFile: string) {
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

async function trainRmStage(ctx: Ctx, name: string, sft: string, trainPath: string, heldoutPath: string) {
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

async function trainPpoStage(ctx: Ctx, name: string, sft: string, rm: { key: string; stage: string }) {
  const ptx = name === 'ppo_ptx';
  const config: PPOConfig = {
    ...ppoDefaults,
    ...ctx.cfg.ppo,
    ptxCoef: ptx ? ctx.cfg.ptxCoef : 0,
    ptxSeqLen: ctx.cfg.pretrain.seq,
    seed: ctx.seed,
  };
  const promptsPath = join(ctx.out, 'data', 'ppo_prompts.jsonl');
  writeJsonlFile(promptsPath, promptRecords(ctx.world.ppo));
  const inputs = {
    config,
    sft,
    rm: rm.key,
    prompts: fileHash(promptsPath),
    corpus: ptx ? fileHash(ctx.corpusPath) : null,
  };
  return ctx.stages.run(
    name,
    inputs,
    (dir) => {
      const sftDir = ctx.stages.dir('sft');
      const rmDir = ctx.stages.dir(rm.stage);
      const tokenizer = Tokenizer.fromDir(sftDir);
      const formatter = new Formatter(tokenizer, sftDir);
      const trainer = new PPOTrainer({
        policy: loadPretrained(sftDir),
        ref: loadPretrained(sftDir),
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

interface EvalResult {
  answers: Record<ModelName, string[]>;
  /** Win rates against SFT per held-out pool, overall and per phrasing split. */
  winRates: Record<HeldoutPoolName, PoolWinRates>;
  corpusLoss: Record<'base' | 'sft' | 'ppo' | 'ppo_ptx', number>;
  /** The checkers' verdicts, and the share of answers with a writer's habit (opener, hedge, padding). */
  stats: Record<ModelName, ModelStats>;
  /** The reward model on probe pairs of known order. */
  rmProbes: Record<ProbeKind, ProbeAccuracy>;
}

/**
 * Answers of all five models on the evaluation prompts, judged by every held-out pool against SFT's; the reward model
 * on probe pairs built from the same prompts; the loss of each model on held-out prose.
 */
async function evaluate(ctx: Ctx, keys: Record<string, string>) {
  const { maxNewTokens, shots } = ctx.cfg;
  const tasks = ctx.world.eval;
  return ctx.stages.run(
    'eval',
    { keys, maxNewTokens, shots, seed: ctx.seed, heldout: fileHash(ctx.heldoutCorpusPath), policy: 'ema', v: 2 },
    (): EvalResult => {
      const greedy = { maxNewTokens, temperature: 0, seed: ctx.seed };
      const baseDir = ctx.stages.dir('base');
      const tok = Tokenizer.fromDir(baseDir);
      const base = loadPretrained(baseDir);
      const room = base.maxPositions - maxNewTokens;
      const exampleRng = new Rng(ctx.seed + 31);
      // The few-shot prompt drops examples until it fits the context.
      const fewShot = tasks.map((t) => {
        const examples = fewShotExamples(t, ctx.world.sft, exampleRng, shots);
        for (let n = shots; n > 0; n--) {
          const ids = tok.encode(fewShotPrompt(t, examples.slice(0, n)));
          if (ids.length <= room) return ids;
        }
        return tok.encode(fewShotPrompt(t, []));
      });
      const answers = {} as Record<ModelName, string[]>;
      const heldoutText = readFileSync(ctx.heldoutCorpusPath, 'utf8');
      const corpusLosses = {} as EvalResult['corpusLoss'];
      try {
        ctx.say('eval: base model');
        answers.base = complete(
          base,
          tok,
          tasks.map((t) => tok.encode(`${t.prompt}\n`)),
          { ...greedy, stop: FEW_SHOT_STOP },
        );
        ctx.say('eval: base model with a few-shot prompt');
        answers.prompted = complete(base, tok, fewShot, { ...greedy, stop: FEW_SHOT_STOP });
        corpusLosses.base = corpusLoss(base, tok, heldoutText);
      } finally {
        release(base);
      }
      for (const name of ['sft', 'ppo', 'ppo_ptx'] as const) {
        ctx.say(`eval: ${MODEL_LABELS[name]}`);
        // PPO's result is the moving average of its policy weights (decay 0.992, as in the paper), not the last step.
        const dir = name === 'sft' ? ctx.stages.dir(name) : join(ctx.stages.dir(name), 'ema');
        answers[name] = chatAnswers(dir, tasks, greedy);
        const model = loadPretrained(dir);
        corpusLosses[name] = corpusLoss(model, tok, heldoutText);
        release(model);
      }
      const pools = heldoutPools(ctx.seed + 2, { size: ctx.cfg.labelers });
      const winRates = Object.fromEntries(
        HELDOUT_POOL_NAMES.map((p) => [p, poolWinRates(pools[p], tasks, answers)]),
      ) as EvalResult['winRates'];
      const stats = Object.fromEntries(MODELS.map((m) => [m, modelStats(tasks, answers[m])])) as EvalResult['stats'];
      const rmProbes = rmProbeAccuracy(ctx.stages.dir('rm'), probePairs(tasks, new Rng(ctx.seed + 41)));
      return { answers, winRates, corpusLoss: corpusLosses, stats, rmProbes };
    },
    (r) =>
      `${MODELS.map((m) => `${MODEL_LABELS[m]} ${(100 * worstPool(r.winRates, m)).toFixed(0)} %`).join(', ')} ` +
      `(win rate vs SFT, held-out phrasings, least pleased pool); correct ` +
      MODELS.map((m) => `${MODEL_LABELS[m]} ${(100 * r.stats[m].correct).toFixed(0)} %`).join(', '),
  );
}

/** A model's win rate on held-out phrasings as judged by the held-out pool that likes it least. */
function worstPool(rates: EvalResult['winRates'], model: ModelName): number {
  return Math.min(...HELDOUT_POOL_NAMES.map((p) => rates[p].byPhrasing.heldout[model].winRate));
}

// ---------------------------------------------------------------- the report

function series(path: string, key: string): [number, number][] {
  if (!existsSync(path)) return [];
  return readMetrics(path)
    .filter((r) => typeof r[key] === 'number')
    .map((r) => [Number(r.step), Number(r[key])]);
}

const PROBE_WHAT: Record<ProbeKind, string> = {
  correctness: 'right over wrong, same style',
  style: 'plain over hedged or padded, same answer',
  honesty: '“I do not know” over an invented answer (no such town)',
};

function reportData(
  ctx: Ctx,
  r: {
    ev: EvalResult;
    rmAccuracy: number;
    agreement: AgreementReport;
    heldoutAgreement: AgreementReport;
    summary: DemoSummary;
  },
): ReportData {
  const m = (stage: string) => join(ctx.stages.dir(stage), 'metrics.jsonl');
  const rewardKl = (stage: string) =>
    readMetrics(m(stage)).map((x): [number, number] => [
      Math.sqrt(Math.max(0, Number(x['objective/kl']))),
      Number(x['objective/scores']),
    ]);
  const trainVal = (title: string, stage: string, valName: string) => ({
    title,
    series: [
      { name: 'train', points: series(m(stage), 'train/loss') },
      { name: valName, points: series(m(stage), 'eval/loss') },
    ],
  });
  const judge = heldoutPool(ctx.seed + 5, { size: 1 })[0];
  const tasks = ctx.world.eval;
  // The first prompts, and a few about towns that do not exist.
  const unanswerable = tasks.map((t, i) => (t.answerable ? -1 : i)).filter((i) => i >= 0);
  const extra = unanswerable.slice(0, Math.ceil(ctx.cfg.samplesShown / 4));
  const first = tasks.map((_, i) => i).filter((i) => !extra.includes(i));
  const shownIdx = [...first.slice(0, ctx.cfg.samplesShown - extra.length), ...extra];
  const shown = shownIdx.map((i) => ({
    prompt: tasks[i].prompt,
    answers: (['sft', 'ppo', 'ppo_ptx'] as const).map((name) => ({
      model: MODEL_LABELS[name],
      text: r.ev.answers[name][i],
      likert: judge.score(tasks[i], r.ev.answers[name][i]).likert,
      correct: tasks[i].check(r.ev.answers[name][i]).correct,
    })),
  }));
  // The pool that likes PPO-ptx least comes first.
  const pools = HELDOUT_POOL_NAMES.slice().sort(
    (a, b) => r.ev.winRates[a].byPhrasing.heldout.ppo_ptx.winRate - r.ev.winRates[b].byPhrasing.heldout.ppo_ptx.winRate,
  );
  const rates = (w: Record<ModelName, WinRate>) => MODELS.map((name) => ({ model: MODEL_LABELS[name], ...w[name] }));
  return {
    title: `instructkit demo: InstructGPT in miniature (--size ${ctx.size})`,
    subtitle: `seed ${ctx.seed} · ${ctx.world.eval.length} held-out prompts · wall ${formatSeconds(r.summary.wall_s)}`,
    summary: r.summary as unknown as Record<string, unknown>,
    winRates: pools.map((pool) => ({
      pool,
      heldoutPhrasing: rates(r.ev.winRates[pool].byPhrasing.heldout),
      trainPhrasing: rates(r.ev.winRates[pool].byPhrasing.train),
    })),
    rewardKl: [
      { name: 'PPO', points: rewardKl('ppo') },
      { name: 'PPO-ptx', points: rewardKl('ppo_ptx') },
    ],
    losses: [
      trainVal('Pretraining', 'base', 'validation'),
      trainVal('SFT', 'sft', 'validation'),
      trainVal('Reward model', 'rm', 'held-out'),
      {
        title: 'PPO value loss',
        series: [
          { name: 'PPO', points: series(m('ppo'), 'value/loss') },
          { name: 'PPO-ptx', points: series(m('ppo_ptx'), 'value/loss') },
        ],
      },
      {
        title: 'PPO-ptx pretraining loss',
        series: [{ name: 'ptx', points: series(m('ppo_ptx'), 'ptx/loss') }],
      },
    ],
    labelers: {
      agreement: r.agreement.agreement,
      agreementSd: r.agreement.sd,
      heldoutAgreement: r.heldoutAgreement.agreement,
      heldoutAgreementSd: r.heldoutAgreement.sd,
      rmHeldoutAccuracy: r.rmAccuracy,
      probes: PROBE_KINDS.map((kind) => ({ kind, what: PROBE_WHAT[kind], ...r.ev.rmProbes[kind] })),
    },
    tax: (['base', 'sft', 'ppo', 'ppo_ptx'] as const).map((name) => ({
      model: MODEL_LABELS[name],
      loss: r.ev.corpusLoss[name],
      vsBase: r.ev.corpusLoss[name] - r.ev.corpusLoss.base,
      vsSft: r.ev.corpusLoss[name] - r.ev.corpusLoss.sft,
    })),
    stats: MODELS.map((name) => {
      const st = r.ev.stats[name];
      return {
        model: MODEL_LABELS[name],
        ...st,
        correctTrainPhrasing: st.byPhrasing.train.correct,
        correctHeldoutPhrasing: st.byPhrasing.heldout.correct,
      };
    }),
    samples: shown,
    stages: ctx.stages.log,
  };
}

// ---------------------------------------------------------------- the whole run

const STAGE_NAMES = ['base', 'sft', 'samples', 'rm', 'ppo', 'ppo_ptx', 'eval', 'report'];
// With a second round: PPO against the first reward model, its samples ranked, the reward model trained again.
const ITERATED_STAGE_NAMES = [
  'base',
  'sft',
  'samples',
  'rm_round1',
  'ppo_round1',
  'samples_round2',
  'rm',
  'ppo',
  'ppo_ptx',
  'eval',
  'report',
];

/** Expected seconds of each stage on 2 cores, for the ETA (per-unit costs measured on the demo's small model). */
function expectedSeconds(cfg: DemoConfig): Record<string, number> {
  const ppo = cfg.ppo.steps! * cfg.ppo.batchSize! * 0.004;
  const samples = (cfg.world.rm + cfg.world.eval) * cfg.k * 0.0015;
  const rm = cfg.world.rm * cfg.rm.epochs! * cfg.k * 0.001 * cfg.rounds;
  return {
    base: cfg.pretrain.steps * 0.02 + 2,
    sft: cfg.sft.epochs! * cfg.world.sft * 0.0006,
    samples,
    rm_round1: rm / 2,
    ppo_round1: ppo,
    samples_round2: samples,
    rm,
    ppo,
    ppo_ptx: ppo * 1.4,
    eval: cfg.world.eval * 0.03,
    report: 1,
  };
}

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  if (!DEMO_SIZES.includes(opts.size))
    throw new Error(`demo: --size must be one of ${DEMO_SIZES.join(', ')}, got "${opts.size}"`);
  if (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > 0xffff)
    throw new Error(`demo: --seed must be an integer in [0, 65535], got ${opts.seed}`);
  const t0 = Date.now();
  const cfg: DemoConfig = { ...DEMO_CONFIGS[opts.size], ...opts.config };
  const say = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const out = resolve(opts.out);
  mkdirSync(join(out, 'data'), { recursive: true });
  const base = {
    size: opts.size,
    cfg,
    seed: opts.seed,
    out,
    say,
    corpusPath: join(out, 'data', 'corpus.txt'),
    heldoutCorpusPath: join(out, 'data', 'heldout_corpus.txt'),
  };
  writeCorpora(base);
  const world = buildWorld(opts.seed, { sizes: cfg.world });
  say(
    `demo (${opts.size}, seed ${opts.seed}) in ${out}: world of ${world.sft.length} SFT, ${world.rm.length} RM, ` +
      `${world.ppo.length} PPO and ${world.eval.length} held-out prompts`,
  );
  // The store is rebuilt on every run: labeling is cheap and deterministic, the expensive stages are cached.
  const dbPath = join(out, 'labels.sqlite');
  for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) rmSync(f, { force: true });
  const store = await openSqliteStore({ path: dbPath });
  const names = cfg.rounds === 2 ? ITERATED_STAGE_NAMES : STAGE_NAMES;
  const stages = new Stages(out, opts.fresh === true, names, expectedSeconds(cfg), say);
  const ctx: Ctx = { ...base, world, stages, store };
  try {
    const pre = await pretrainBase(ctx);
    const demos = await writeDemonstrations(ctx);
    const sft = await trainSftStage(ctx, pre.key, demos);
    const samples = await sampleForRanking(ctx, 'samples', { key: sft.key, dir: stages.dir('sft') }, true);
    const iterated = cfg.rounds === 2;
    const ranked = await rankSamples(ctx, 'samples', iterated ? 'rankings_round1.jsonl' : 'rankings.jsonl');
    let rm = await trainRmStage(ctx, iterated ? 'rm_round1' : 'rm', samples.key, ranked.trainPath, ranked.heldoutPath);
    if (iterated) {
      // Iterated RLHF: PPO against the first reward model, its samples ranked by the same labelers, and the reward
      // model trained again on both rounds' rankings (what the final PPO runs use).
      const ppo1 = await trainPpoStage(ctx, 'ppo_round1', sft.key, { key: rm.key, stage: 'rm_round1' });
      const policy = { key: ppo1.key, dir: join(stages.dir('ppo_round1'), 'ema') };
      const samples2 = await sampleForRanking(ctx, 'samples_round2', policy, false);
      const both = await rankSamples(ctx, 'samples_round2', 'rankings.jsonl');
      rm = await trainRmStage(ctx, 'rm', samples2.key, both.trainPath, both.heldoutPath);
    }
    const ppo = await trainPpoStage(ctx, 'ppo', sft.key, { key: rm.key, stage: 'rm' });
    const ptx = await trainPpoStage(ctx, 'ppo_ptx', sft.key, { key: rm.key, stage: 'rm' });
    const ev = await evaluate(ctx, { base: pre.key, sft: sft.key, rm: rm.key, ppo: ppo.key, ptx: ptx.key });
    const r = ev.result;
    const byModel = <T>(f: (m: ModelName) => T) =>
      Object.fromEntries(MODELS.map((m) => [m, f(m)])) as Record<ModelName, T>;
    const loss = r.corpusLoss;
    const summary: DemoSummary = {
      winrate_vs_sft: byModel((m) => round(worstPool(r.winRates, m))),
      winrate_vs_sft_by_pool: Object.fromEntries(
        HELDOUT_POOL_NAMES.map((p) => [p, byModel((m) => round(r.winRates[p].byPhrasing.heldout[m].winRate))]),
      ) as DemoSummary['winrate_vs_sft_by_pool'],
      correct: byModel((m) => ({
        train: round(r.stats[m].byPhrasing.train.correct),
        heldout: round(r.stats[m].byPhrasing.heldout.correct),
      })),
      abstain: byModel((m) => round(r.stats[m].abstain)),
      rm_heldout_acc: round(rm.result.heldoutAccuracy),
      heldout_labeler_agreement: round(ranked.heldoutAgreement!.agreement),
      labeler_agreement: round(ranked.agreement!.agreement),
      rm_acc_correctness: round(r.rmProbes.correctness.accuracy),
      rm_acc_style: round(r.rmProbes.style.accuracy),
      rm_acc_honesty: round(r.rmProbes.honesty.accuracy),
      tax_vs_base: {
        sft: round(loss.sft - loss.base),
        ppo: round(loss.ppo - loss.base),
        ppo_ptx: round(loss.ppo_ptx - loss.base),
      },
      ptx_tax: round(loss.ppo_ptx - loss.sft),
      ppo_tax: round(loss.ppo - loss.sft),
      wall_s: 0,
      report: join(out, 'report', 'index.html'),
    };
    await stages.run(
      'report',
      { at: Date.now() }, // always rewritten: it shows this run's stage times
      (dir) => {
        summary.wall_s = Math.round((Date.now() - t0) / 100) / 10;
        const data = reportData(ctx, {
          ev: r,
          rmAccuracy: rm.result.heldoutAccuracy,
          agreement: ranked.agreement!,
          heldoutAgreement: ranked.heldoutAgreement!,
          summary,
        });
        writeFileSync(join(out, 'results.json'), `${JSON.stringify({ summary, config: cfg, eval: r }, null, 1)}\n`);
        return { files: writeReport(dir, data).length };
      },
      (x) => `${x.files} files in ${join(out, 'report')}`,
    );
    summary.wall_s = Math.round((Date.now() - t0) / 100) / 10;
    return summary;
  } finally {
    await store.close();
  }
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
