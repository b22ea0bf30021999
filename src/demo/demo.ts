// `instructkit demo`: the InstructGPT paper in miniature. A miniature world with checkable tasks, simulated labelers
// standing in for people, and every step of the paper on a CPU: pretrain a base model on the world's prose →
// labelers write demonstrations → SFT → K samples per prompt ranked by labelers → reward model, and SFT trained further
// on the labelers' top picks (rejection sampling) → PPO and PPO-ptx from there → evaluation by held-out labelers on
// held-out prompts → report/index.html. Labels go through the platform's store (SQLite in the run folder) and the
// trainers read the store's JSONL exports, as they would read real labels.
//
// Run folder (--out):
//   data/            corpus, held-out corpus, the store's exports (demonstrations, rankings, held-out rankings)
//   labels.sqlite    the labeling store      report/   index.html + PNGs      results.json   everything measured
//   base/ sft/ samples/ rm/ rs/ ppo/ ppo_ptx/ dpo/ grpo/ eval/   a folder per stage, with stage.json (its cache key)
//
// Caching: a stage's key hashes its config and the keys (or file hashes) of its inputs; a stage whose stage.json
// holds the same key is skipped, so a second run reuses the base model and every stage whose inputs did not change.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeReport } from '../report/html.js';
import { openSqliteStore } from '../store/index.js';
import { DEMO_CONFIGS, DEMO_SIZES, type DemoConfig, type DemoSize, type PretrainSettings } from './config.js';
import { type EvalResult, evaluate, worstPool } from './eval_stage.js';
import {
  correctVsSft,
  MODELS,
  type ModelName,
  PAIR_KINDS,
  type PairKind,
  type PhrasingSplit,
  TUNED_MODELS,
  type TunedName,
} from './evaluate.js';
import { headline } from './headline.js';
import { HELDOUT_POOL_NAMES, type HeldoutPoolName } from './labelers/index.js';
import { reportData } from './report_data.js';
import { Stages } from './stages.js';
import {
  type Ctx,
  pretrainBase,
  rankSamples,
  sampleForRanking,
  trainDpoStage,
  trainGrpoStage,
  trainPpoStage,
  trainRmStage,
  trainRsStage,
  trainSftStage,
  writeCorpora,
  writeDemonstrations,
} from './steps.js';
import { buildWorld } from './world/index.js';

export { DEMO_CONFIGS, DEMO_SIZES, type DemoConfig, type DemoSize } from './config.js';

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
  /**
   * Each model's `correct` minus SFT's, on the same prompts, with its paired 95 % interval (Newcombe): how much of a
   * gain could be which prompts were drawn.
   */
  correct_vs_sft: Partial<Record<ModelName, Record<PhrasingSplit, { gain: number; lo: number; hi: number }>>>;
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
  /**
   * The reward model's accuracy on the held-out labelers' own rankings by pair kind (one answer right and one wrong,
   * both wrong, both right), beside two held-out labelers' agreement on the same kind and the kind's share of pairs.
   */
  rm_acc_by_pair_kind: Record<PairKind, { rm: number; labelers: number; share: number }>;
  /** Change in held-out prose loss from the base model (the paper's alignment tax; SFT's is its forgetting). */
  tax_vs_base: Record<TunedName, number>;
  /** Change in held-out prose loss from SFT. */
  ptx_tax: number;
  ppo_tax: number;
  /**
   * `--size headline` only: the small PPO-ptx model against a base model `big_params / base_params` times its size
   * prompted few-shot — PPO-ptx's win rate per held-out pool on held-out phrasings, and the big model's correctness.
   */
  headline?: {
    base_params: number;
    big_params: number;
    ppo_ptx_vs_prompted_big_by_pool: Record<HeldoutPoolName, number>;
    correct_prompted_big: Record<PhrasingSplit, number>;
  };
  wall_s: number;
  report: string;
}

// ---------------------------------------------------------------- the whole run

const STAGE_NAMES = ['base', 'sft', 'samples', 'rm', 'rs', 'ppo', 'ppo_ptx', 'dpo', 'grpo', 'eval', 'report'];
// With a second round: PPO against the first reward model, its samples ranked, the reward model trained again.
const ITERATED_STAGE_NAMES = [
  'base',
  'sft',
  'samples',
  'rm_round1',
  'ppo_round1',
  'samples_round2',
  'rm',
  'rs',
  'ppo',
  'ppo_ptx',
  'dpo',
  'grpo',
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
    rs: cfg.world.rm * cfg.rounds * cfg.rejectionSampling.epochs! * 0.0008,
    ppo,
    ppo_ptx: ppo * 1.4,
    dpo: cfg.world.rm * cfg.dpo.epochs! * cfg.k * cfg.k * 0.0003,
    grpo: ppo * 0.8,
    eval: cfg.world.eval * 0.03,
    base_big: cfg.bigBase ? cfg.bigBase.steps * 0.3 : 0,
    headline: cfg.world.eval * 0.02,
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
  const rounds = cfg.rounds === 2 ? ITERATED_STAGE_NAMES : STAGE_NAMES;
  const names = cfg.bigBase ? [...rounds.slice(0, -1), 'base_big', 'headline', 'report'] : rounds;
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
    // What the final reward model (and DPO) train on: every round's rankings.
    let rankings = ranked;
    if (iterated) {
      // Iterated RLHF: PPO against the first reward model, its samples ranked by the same labelers, and the reward
      // model trained again on both rounds' rankings (what the final PPO runs use).
      const ppo1 = await trainPpoStage(
        ctx,
        'ppo_round1',
        { key: sft.key, stage: 'sft' },
        { key: rm.key, stage: 'rm_round1' },
      );
      const policy = { key: ppo1.key, dir: join(stages.dir('ppo_round1'), 'ema') };
      const samples2 = await sampleForRanking(ctx, 'samples_round2', policy, false);
      const both = await rankSamples(ctx, 'samples_round2', 'rankings.jsonl');
      rm = await trainRmStage(ctx, 'rm', samples2.key, both.trainPath, both.heldoutPath);
      rankings = both;
    }
    // Every method after the reward model starts from SFT improved by rejection sampling on the same rankings.
    const rs = await trainRsStage(ctx, sft.key, rankings.trainPath);
    const init = { key: rs.key, stage: 'rs' };
    const ppo = await trainPpoStage(ctx, 'ppo', init, { key: rm.key, stage: 'rm' });
    const ptx = await trainPpoStage(ctx, 'ppo_ptx', init, { key: rm.key, stage: 'rm' });
    const dpo = await trainDpoStage(ctx, init, rankings.trainPath, rankings.heldoutPath);
    const grpo = await trainGrpoStage(ctx, init);
    const ev = await evaluate(ctx, {
      base: pre.key,
      sft: sft.key,
      rm: rm.key,
      rs: rs.key,
      ppo: ppo.key,
      ptx: ptx.key,
      dpo: dpo.key,
      grpo: grpo.key,
    });
    const r = ev.result;
    const byModel = <T>(f: (m: ModelName) => T) =>
      Object.fromEntries(MODELS.map((m) => [m, f(m)])) as Record<ModelName, T>;
    const loss = r.corpusLoss;
    const vsSft = correctVsSft(ctx.world.eval, r.answers);
    const summary: DemoSummary = {
      winrate_vs_sft: byModel((m) => round(worstPool(r.winRates, m))),
      winrate_vs_sft_by_pool: Object.fromEntries(
        HELDOUT_POOL_NAMES.map((p) => [p, byModel((m) => round(r.winRates[p].byPhrasing.heldout[m].winRate))]),
      ) as DemoSummary['winrate_vs_sft_by_pool'],
      correct: byModel((m) => ({
        train: round(r.stats[m].byPhrasing.train.correct),
        heldout: round(r.stats[m].byPhrasing.heldout.correct),
      })),
      correct_vs_sft: Object.fromEntries(
        MODELS.filter((m) => m !== 'sft').map((m) => {
          const d = (p: PhrasingSplit) => ({
            gain: round(vsSft[m][p].diff),
            lo: round(vsSft[m][p].lo),
            hi: round(vsSft[m][p].hi),
          });
          return [m, { train: d('train'), heldout: d('heldout') }];
        }),
      ),
      abstain: byModel((m) => round(r.stats[m].abstain)),
      rm_heldout_acc: round(rm.result.heldoutAccuracy),
      heldout_labeler_agreement: round(ranked.heldoutAgreement!.agreement),
      labeler_agreement: round(ranked.agreement!.agreement),
      rm_acc_correctness: round(r.rmProbes.correctness.accuracy),
      rm_acc_style: round(r.rmProbes.style.accuracy),
      rm_acc_honesty: round(r.rmProbes.honesty.accuracy),
      rm_acc_by_pair_kind: Object.fromEntries(
        PAIR_KINDS.map((k) => {
          const a = r.rmByPairKind[k];
          return [k, { rm: round(a.rm), labelers: round(a.labelers), share: round(a.share) }];
        }),
      ) as DemoSummary['rm_acc_by_pair_kind'],
      tax_vs_base: Object.fromEntries(
        TUNED_MODELS.map((m) => [m, round(loss[m] - loss.base)]),
      ) as DemoSummary['tax_vs_base'],
      ptx_tax: round(loss.ppo_ptx - loss.sft),
      ppo_tax: round(loss.ppo - loss.sft),
      wall_s: 0,
      report: join(out, 'report', 'index.html'),
    };
    const head = cfg.bigBase ? await headlineStage(ctx, cfg.bigBase, pre, ev) : null;
    if (head) {
      const h = head.result;
      summary.headline = {
        base_params: h.baseParameters,
        big_params: h.bigParameters,
        ppo_ptx_vs_prompted_big_by_pool: Object.fromEntries(
          HELDOUT_POOL_NAMES.map((p) => [p, round(h.ppoPtxWinRate[p].winRate)]),
        ) as Record<HeldoutPoolName, number>,
        correct_prompted_big: {
          train: round(h.stats.byPhrasing.train.correct),
          heldout: round(h.stats.byPhrasing.heldout.correct),
        },
      };
    }
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
        writeFileSync(
          join(out, 'results.json'),
          `${JSON.stringify({ summary, config: cfg, eval: r, headline: head?.result ?? null }, null, 1)}\n`,
        );
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

/** The big base pretrained (a stage of its own, cached like the others), then judged against PPO-ptx. */
async function headlineStage(
  ctx: Ctx,
  settings: PretrainSettings,
  pre: { key: string; result: { parameters: number } },
  ev: { key: string; result: EvalResult },
) {
  const big = await pretrainBase(ctx, 'base_big', settings);
  const params = { base: pre.result.parameters, big: big.result.parameters };
  return headline(ctx, { bigBase: big.key, eval: ev.key }, params, ev.result);
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
