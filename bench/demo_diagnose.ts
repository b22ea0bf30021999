// Why the demo's reward model does or does not learn correctness, measured on a finished demo run folder:
//   - of the training labelers' ranked pairs, how many differ in correctness (the only pairs that teach it);
//   - whether a model "knows" the answers: log π(right) > log π(wrong) on the correctness probe pairs, for the
//     base model (prompt as plain text) and for SFT (chat prompt), per task family;
//   - the reward model's probe accuracy per family;
//   - on the held-out labelers' rankings: how often the reward model and a noise-free judge with the training labelers'
//     weights (the best a reward model of those labelers could do) agree with the label, per criterion that decides
//     the judge (the feature with the largest weighted difference), and for correctness per task family.
// Usage: node dist/bench/demo_diagnose.js RUN_DIR [--size tiny|small] [--seed N] [--rm DIR ...]
// Last line: one JSON object.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_CONFIGS, type DemoSize } from '../src/demo/demo.js';
import { type ProbePair, probePairs, release, rewardModelScores } from '../src/demo/evaluate.js';
import { cleanJudgement, type Features, responseFeatures, TRAINING_WEIGHTS } from '../src/demo/labelers/index.js';
import { buildWorld, type Task } from '../src/demo/world/index.js';
import { type CausalLM, loadPretrained } from '../src/models/index.js';
import { readComparisons } from '../src/rlhf/data.js';
import { sequenceLogps } from '../src/rlhf/dpo.js';
import { orderedPairs } from '../src/store/ranking.js';
import { noGrad, Rng, tidy } from '../src/tensor/index.js';
import { Formatter, Tokenizer } from '../src/tokenizer/index.js';

const args = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const run = args[0];
if (!run || run.startsWith('--')) throw new Error('usage: demo_diagnose RUN_DIR [--size tiny|small] [--seed N]');
const size = flag('--size', 'tiny') as DemoSize;
const seed = Number(flag('--seed', '0'));
const rmDirs = args.flatMap((a, i) => (args[i - 1] === '--rm' ? [a] : []));
const world = buildWorld(seed, { sizes: DEMO_CONFIGS[size].world });
const byPrompt = new Map<string, Task>([...world.rm, ...world.eval].map((t) => [t.prompt, t]));

const pct = (x: number) => Math.round(1000 * x) / 10;
/** 1 when the better side scores higher, a half for a tie, else 0. */
const agrees = (better: number, worse: number) => (better > worse ? 1 : better === worse ? 0.5 : 0);

// ---- ranked pairs by correctness
function pairKinds(file: string) {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const tally = { differ: 0, bothRight: 0, bothWrong: 0, pairs: 0, rankingsWithRight: 0, rankings: lines.length };
  for (const line of lines) {
    const r = JSON.parse(line) as { prompt: string; responses: string[] };
    const task = byPrompt.get(r.prompt);
    if (!task) continue;
    const ok = r.responses.map((x) => task.check(x).correct);
    if (ok.some(Boolean)) tally.rankingsWithRight++;
    for (let i = 0; i < ok.length; i++)
      for (let j = i + 1; j < ok.length; j++) {
        tally.pairs++;
        if (ok[i] !== ok[j]) tally.differ++;
        else if (ok[i]) tally.bothRight++;
        else tally.bothWrong++;
      }
  }
  return {
    pairs: tally.pairs,
    differ: pct(tally.differ / tally.pairs),
    bothRight: pct(tally.bothRight / tally.pairs),
    bothWrong: pct(tally.bothWrong / tally.pairs),
    rankingsWithARightAnswer: pct(tally.rankingsWithRight / tally.rankings),
  };
}

// ---- does a model prefer the right answer?
const pairs = probePairs(world.eval, new Rng(seed + 41)).filter((p) => p.kind === 'correctness');
const familyOf = new Map(world.eval.map((t) => [t.prompt, t.family]));

function byFamily(pairs: ProbePair[], wins: number[]) {
  const acc: Record<string, { right: number; n: number }> = {};
  pairs.forEach((p, i) => {
    const f = familyOf.get(p.prompt) ?? '?';
    acc[f] ??= { right: 0, n: 0 };
    acc[f].right += wins[i];
    acc[f].n++;
  });
  const out: Record<string, number> = { all: pct(wins.reduce((a, b) => a + b, 0) / wins.length) };
  for (const [f, a] of Object.entries(acc)) out[f] = pct(a.right / a.n);
  return out;
}

function logpProbe(
  model: CausalLM,
  prompt: (p: ProbePair) => number[],
  response: (t: string) => number[],
  pad: number,
) {
  const wins: number[] = [];
  for (let i = 0; i < pairs.length; i += 32) {
    const chunk = pairs.slice(i, i + 32);
    const rows = chunk.flatMap((p) => {
      const pr = prompt(p);
      return [p.better, p.worse].map((t) => ({
        ids: [...pr, ...response(t)],
        promptLength: pr.length,
        file: '',
        line: 0,
      }));
    });
    const lp = noGrad(() => tidy(() => sequenceLogps(model, rows, pad, false).toArray()));
    chunk.forEach((_, j) => {
      wins.push(agrees(lp[2 * j], lp[2 * j + 1]));
    });
  }
  return byFamily(pairs, wins);
}

function modelProbe(dir: string, chat: boolean) {
  const tok = Tokenizer.fromDir(dir);
  const fmt = new Formatter(tok, dir);
  const model = loadPretrained(dir);
  model.eval();
  try {
    const prompt = chat
      ? (p: ProbePair) => fmt.prompt(p.prompt)
      : (p: ProbePair) => tok.encode(`Q: ${p.prompt}\nA:`, { addSpecialTokens: false });
    const response = chat
      ? (t: string) => fmt.response(t)
      : (t: string) => tok.encode(` ${t}\n`, { addSpecialTokens: false });
    return logpProbe(model, prompt, response, fmt.padId);
  } finally {
    release(model);
  }
}

function rmProbe(dir: string) {
  const s = rewardModelScores(
    dir,
    pairs.map((p) => ({ prompt: p.prompt, responses: [p.better, p.worse] })),
  );
  return byFamily(
    pairs,
    pairs.map((_, i) => agrees(s[2 * i], s[2 * i + 1])),
  );
}

// ---- held-out rankings by the criterion that decides a noise-free judge
// The judge is linear in the features, so one feature's share of a pair's difference is the judge of that difference
// alone.
function shareOf(a: Features, b: Features, k: keyof Features): number {
  const only = Object.fromEntries(Object.keys(a).map((f) => [f, f === k ? a[k] - b[k] : 0])) as unknown as Features;
  return Math.abs(cleanJudgement(TRAINING_WEIGHTS, only));
}

function heldoutByCriterion(rmDir: string) {
  const rankings = readComparisons(join(run, 'data', 'rankings_heldout.jsonl')).records;
  const scores = rewardModelScores(rmDir, rankings);
  const tally: Record<string, { rm: number; judge: number; n: number }> = {};
  const count = (key: string, rm: number, judge: number) => {
    tally[key] ??= { rm: 0, judge: 0, n: 0 };
    tally[key].rm += rm;
    tally[key].judge += judge;
    tally[key].n++;
  };
  let offset = 0;
  for (const r of rankings) {
    const task = byPrompt.get(r.prompt);
    if (!task) throw new Error(`${r.prompt}: not a prompt of this world (wrong --size or --seed?)`);
    const features = r.responses.map((x) => responseFeatures(task, x));
    const judged = features.map((f) => cleanJudgement(TRAINING_WEIGHTS, f));
    for (const [w, l] of orderedPairs(r.ranking)) {
      const rm = agrees(scores[offset + w], scores[offset + l]);
      const judge = agrees(judged[w], judged[l]);
      count('all', rm, judge);
      const gaps = (Object.keys(features[w]) as (keyof Features)[]).map(
        (k) => [k, shareOf(features[w], features[l], k)] as const,
      );
      const [criterion, gap] = gaps.reduce((a, b) => (b[1] > a[1] ? b : a));
      if (gap === 0) continue;
      const where = task.answerable ? 'answerable' : 'unanswerable';
      count(`${where}/${criterion}`, rm, judge);
      if (criterion === 'correct' && task.answerable) count(`correct/${task.family}`, rm, judge);
    }
    offset += r.responses.length;
  }
  return Object.fromEntries(
    Object.entries(tally)
      .sort((a, b) => b[1].n - a[1].n)
      .map(([k, t]) => [k, { n: t.n, rm: pct(t.rm / t.n), judge: pct(t.judge / t.n) }]),
  );
}

const result = {
  run,
  rankedPairs: pairKinds(join(run, 'data', 'rankings.jsonl')),
  probePairs: pairs.length,
  logpBase: modelProbe(join(run, 'base'), false),
  logpSft: modelProbe(join(run, 'sft'), true),
  rm: Object.fromEntries([join(run, 'rm'), ...rmDirs].map((d) => [d, rmProbe(d)])),
  heldoutByCriterion: Object.fromEntries([join(run, 'rm'), ...rmDirs].map((d) => [d, heldoutByCriterion(d)])),
};
console.log(JSON.stringify(result));
