// What the demo's report page shows, gathered from the stages' results and metrics.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ReportData } from '../report/html.js';
import { readMetrics } from '../train/metrics.js';
import { formatSeconds } from '../train/progress.js';
import type { DemoSummary } from './demo.js';
import type { EvalResult } from './eval_stage.js';
import {
  MODEL_LABELS,
  MODELS,
  type ModelName,
  PAIR_KINDS,
  type PairKind,
  PROBE_KINDS,
  type ProbeKind,
  TUNED_MODELS,
} from './evaluate.js';
import { type AgreementReport, HELDOUT_POOL_NAMES, heldoutPool, type WinRate } from './labelers/index.js';
import type { Ctx } from './steps.js';

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

const PAIR_WHAT: Record<PairKind, string> = {
  right_vs_wrong: 'one answer right, the other wrong',
  both_wrong: 'both wrong',
  both_right: 'both right',
};

export function reportData(
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
    answers: TUNED_MODELS.map((name) => ({
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
      pairKinds: PAIR_KINDS.map((kind) => ({ what: PAIR_WHAT[kind], ...r.ev.rmByPairKind[kind] })),
    },
    tax: (['base', ...TUNED_MODELS] as const).map((name) => ({
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
        heldoutVsSft: r.summary.correct_vs_sft[name]?.heldout ?? null,
      };
    }),
    samples: shown,
    stages: ctx.stages.log,
  };
}
