import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadScalarPretrained, ScalarModel, saveScalarPretrained, scoreSequences } from '../src/models/index.js';
import {
  batchRankingLoss,
  encodeDemonstrations,
  loadCausalLM,
  type RmConfig,
  rankingLoss,
  readComparisons,
  readDemonstrations,
  rmDefaults,
  trainRewardModel,
} from '../src/rlhf/index.js';
import { bestOf } from '../src/store/ranking.js';
import { backward, Rng, tensor, tidy } from '../src/tensor/index.js';
import { Formatter } from '../src/tokenizer/index.js';
import { readMetrics } from '../src/train/metrics.js';
import { WORDS, writeJsonl, writeTinyModel } from './helpers/tiny_lm.js';

const root = mkdtempSync(join(tmpdir(), 'ik-rm-'));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = writeTinyModel(join(root, 'sft'));
const quiet = () => {};

// float64 reference: −1/C(K,2) Σ_{i<j} log σ(s[rank[i]] − s[rank[j]] − m), and its gradient.
function reference(s: number[], ranking: number[], m: number): { loss: number; grad: number[] } {
  const K = ranking.length;
  const C = (K * (K - 1)) / 2;
  let loss = 0;
  const grad = s.map(() => 0);
  for (let i = 0; i < K; i++)
    for (let j = i + 1; j < K; j++) {
      const w = ranking[i];
      const l = ranking[j];
      const x = s[w] - s[l] - m;
      const sig = 1 / (1 + Math.exp(-x));
      loss -= Math.log(sig) / C;
      grad[w] -= (1 - sig) / C;
      grad[l] += (1 - sig) / C;
    }
  return { loss, grad };
}

test('rankingLoss with K = 4 matches a float64 hand computation, value and gradient', () => {
  const s = [0.3, -1.2, 2.0, 0.7];
  const ranking = [2, 0, 3, 1];
  for (const margin of [0, 0.5]) {
    const want = reference(s, ranking, margin);
    tidy(() => {
      const scores = tensor(s);
      scores.requiresGrad = true;
      const loss = rankingLoss(scores, ranking, margin);
      assert.ok(Math.abs(loss.item() - want.loss) < 1e-6, `${loss.item()} vs ${want.loss}`);
      backward(loss);
      for (const [i, g] of scores.grad!.toArray().entries()) assert.ok(Math.abs(g - want.grad[i]) < 1e-6, `grad ${i}`);
    });
  }
  // Large gaps neither overflow nor give log(0).
  const far = tidy(() => rankingLoss(tensor([-60, 60]), [0, 1]).item());
  assert.ok(Math.abs(far - 120) < 1e-4, String(far));
  // A batch: the mean over prompts of each prompt's loss, whatever their K.
  const a = reference([1, 0, 2], [1, 2, 0], 0).loss;
  const b = reference([0.5, -0.5], [0, 1], 0).loss;
  const batch = tidy(() =>
    batchRankingLoss(tensor([1, 0, 2, 0.5, -0.5]), [
      { offset: 0, ranking: [1, 2, 0] },
      { offset: 3, ranking: [0, 1] },
    ]).item(),
  );
  assert.ok(Math.abs(batch - (a + b) / 2) < 1e-6);
  assert.throws(
    () => rankingLoss(tensor([1, 2, 3]), [0, 0, 1]),
    /rankingLoss: ranking \[0,0,1\]: "ranking" must be a permutation/,
  );
  assert.throws(() => rankingLoss(tensor([1, 2]), [0, 2]), /rankingLoss/);
});

test('rankingLoss with ties: the mean over pairs across places only; a ranking that is one tie is refused', () => {
  const s = [0.3, -1.2, 2.0, 0.7];
  // 2 best, 0 and 3 tied, 1 last: pairs (2,0) (2,3) (2,1) (0,1) (3,1), never (0,3).
  const pairs = [
    [2, 0],
    [2, 3],
    [2, 1],
    [0, 1],
    [3, 1],
  ];
  const nll = (x: number) => Math.log1p(Math.exp(-x));
  const want = pairs.reduce((acc, [w, l]) => acc + nll(s[w] - s[l]), 0) / pairs.length;
  const got = tidy(() => rankingLoss(tensor(s), [2, [0, 3], 1]).item());
  assert.ok(Math.abs(got - want) < 1e-6, `${got} vs ${want}`);
  assert.throws(() => rankingLoss(tensor([1, 2]), [[0, 1]]), /is one tie: it makes no pair/);
});

// The hidden order: a response's worth is its word's index in WORDS.
function rankings(n: number, rng: Rng) {
  return Array.from({ length: n }, (_, i) => {
    const picked: number[] = [];
    while (picked.length < 4) {
      const w = rng.int(WORDS.length);
      if (!picked.includes(w)) picked.push(w);
    }
    const ranking = [0, 1, 2, 3].sort((x, y) => picked[y] - picked[x]);
    return {
      prompt: `say ${WORDS[rng.int(WORDS.length)]}`,
      responses: picked.map((w) => WORDS[w]),
      ranking,
      labeler: i % 2 === 0 ? 'ann' : 'bob',
    };
  });
}

const tiny: RmConfig = { ...rmDefaults, epochs: 2, batchSize: 4, lr: 1e-2, warmupRatio: 0.05 };

// One demonstration per word: the calibration set, on which a trained reward model scores 0 on average.
const demos = writeJsonl(
  join(root, 'demos.jsonl'),
  WORDS.map((w) => ({ prompt: `say ${w}`, completion: w })),
);

/** Trains on these rankings, calibrated on the demonstrations. */
function train(dataFile: string, valFile: string, outDir: string, config: RmConfig = tiny) {
  return trainRewardModel({ modelDir, dataFile, valFile, demosFile: demos, outDir, config, log: quiet });
}

function demoScores(rm: ScalarModel): number[] {
  const { tokenizer } = loadCausalLM(modelDir);
  const fmt = new Formatter(tokenizer, modelDir);
  return scoreSequences(rm, encodeDemonstrations(readDemonstrations(demos).records, fmt, 48).records, 8, fmt.padId);
}

test('a reward model learns a hidden order: >= 95% held-out pairwise accuracy, per labeler too; bias calibrated', () => {
  const rng = new Rng(11);
  const data = writeJsonl(join(root, 'train.jsonl'), rankings(160, rng));
  // Pairwise lines mix in with rankings (auto-detected).
  const val = writeJsonl(join(root, 'val.jsonl'), [
    ...rankings(40, rng),
    { prompt: 'say red', chosen: 'teal', rejected: 'green' },
  ]);
  const out = join(root, 'rm');
  const r = train(data, val, out);
  assert.equal(r.valRankings, 41);
  assert.ok(r.val!.accuracy >= 0.95, `held-out accuracy ${r.val!.accuracy}`);
  assert.deepEqual(Object.keys(r.val!.perLabeler).sort(), ['ann', 'bob']);
  for (const acc of Object.values(r.val!.perLabeler)) assert.ok(acc >= 0.9);

  const metrics = readMetrics(join(out, 'metrics.jsonl'));
  const last = metrics.filter((m) => 'eval/accuracy' in m).at(-1)!;
  assert.equal(last['eval/accuracy'], r.val!.accuracy);
  assert.ok('eval/accuracy/ann' in last && 'eval/accuracy/bob' in last);
  assert.ok(metrics.some((m) => 'train/accuracy' in m && 'train/loss' in m));

  // The saved model scores the demonstrations 0 on average (and still orders responses).
  const scores = demoScores(loadScalarPretrained(out).eval());
  const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
  assert.ok(Math.abs(mean) < 1e-4, `mean demo score ${mean}`);
  assert.ok(Math.abs(r.biasShift!) > 1e-3, 'the calibration moved the bias');
  assert.ok(scores[7] > scores[0], 'teal above red');
});

test('with a likelihood term the reward model still learns the order, trains the term, and calibrates to 0', () => {
  const rng = new Rng(12);
  const data = writeJsonl(join(root, 'll-train.jsonl'), rankings(120, rng));
  const val = writeJsonl(join(root, 'll-val.jsonl'), rankings(30, rng));
  const out = join(root, 'rm-ll');
  const r = train(data, val, out, { ...tiny, likelihood: 1 });
  assert.ok(r.val!.accuracy >= 0.9, `held-out accuracy ${r.val!.accuracy}`);
  const rm = loadScalarPretrained(out).eval();
  assert.ok(rm.likelihood !== null, 'the saved model keeps its likelihood term');
  assert.notEqual(rm.likelihood.weight.f32[0], 1, 'the weight trained');
  const scores = demoScores(rm);
  assert.ok(Math.abs(scores.reduce((a, b) => a + b, 0) / scores.length) < 1e-4);
});

test('without --demos the top-ranked training responses are calibrated to 0', () => {
  const data = writeJsonl(join(root, 'small.jsonl'), rankings(16, new Rng(3)));
  const out = join(root, 'rm-top');
  const r = trainRewardModel({
    modelDir,
    dataFile: data,
    outDir: out,
    config: { ...tiny, epochs: 1, valFraction: 0.25 },
    log: quiet,
  });
  assert.equal([r.trainRankings, r.valRankings].join(), '12,4');
  const rm = loadScalarPretrained(out).eval();
  const { tokenizer } = loadCausalLM(modelDir);
  const fmt = new Formatter(tokenizer, modelDir);
  const all = readComparisons(data).records;
  const scores = all.map((rec) => {
    const prompt = fmt.prompt(rec.prompt);
    const ids = [...prompt, ...fmt.response(rec.responses[bestOf(rec.ranking)])];
    return scoreSequences(rm, [{ ids, promptLength: prompt.length }], 1, fmt.padId)[0];
  });
  // The calibration set is the 12 training rankings: the mean over all 16 is near 0, not exactly.
  assert.ok(Math.abs(scores.reduce((a, b) => a + b, 0) / scores.length) < 0.5);
});

test('rm bad input fails before training, naming file:line (or file and field)', () => {
  const run = (dataFile: string, extra: Partial<Parameters<typeof trainRewardModel>[0]> = {}) =>
    trainRewardModel({ modelDir, dataFile, outDir: join(root, 'bad-out'), config: tiny, log: quiet, ...extra });
  const good = rankings(4, new Rng(5));
  const file = writeJsonl(join(root, 'bad.jsonl'), [
    ...good,
    { prompt: 'p', responses: ['a', 'b', 'c'], ranking: [0, 0, 1] },
    { prompt: 'p', responses: ['a', 'b', 'c'], ranking: [0, 1, 3] },
    { prompt: 'p', responses: ['a'], ranking: [0] },
    { prompt: 'p', responses: Array(10).fill('a'), ranking: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
    { prompt: 'p', chosen: 'a' },
    'not json',
  ]);
  assert.throws(
    () => run(file),
    (e: Error) => {
      assert.match(e.message, /bad\.jsonl:5: "ranking" must be a permutation of 0\.\.2/);
      assert.match(e.message, /bad\.jsonl:6: "ranking" must be a permutation of 0\.\.2/);
      assert.match(e.message, /bad\.jsonl:7: "responses" must hold 2\.\.9 items/);
      assert.match(e.message, /bad\.jsonl:8: "responses" must hold 2\.\.9 items/);
      assert.match(e.message, /bad\.jsonl:9: "rejected" must be a string/);
      assert.match(e.message, /bad\.jsonl:10: invalid JSON/);
      return true;
    },
  );
  const lines: string[] = [];
  const skipped = trainRewardModel({
    modelDir,
    dataFile: file,
    outDir: join(root, 'skip-out'),
    config: { ...tiny, epochs: 1, valFraction: 0 },
    log: (l) => lines.push(l),
    skipBad: true,
  });
  assert.equal(skipped.skipped.length, 6);
  assert.ok(lines.includes('skipped 6 bad line(s)'));
  // --format rankings reads a pairwise line as a (bad) ranking.
  const pair = writeJsonl(join(root, 'pair.jsonl'), [{ prompt: 'p', chosen: 'a', rejected: 'b' }]);
  assert.throws(() => run(pair, { format: 'rankings' }), /pair\.jsonl:1: "responses" must be an array/);

  const long = writeJsonl(join(root, 'long.jsonl'), [
    ...good,
    { prompt: 'p', responses: ['a', 'red '.repeat(60)], ranking: [1, 0] },
  ]);
  assert.throws(
    () => run(long),
    /long\.jsonl:5: prompt \+ response 1 is \d+ tokens, longer than the model context of 48/,
  );
  assert.throws(
    () => run(writeJsonl(join(root, 'empty.jsonl'), [])),
    /empty\.jsonl: no usable records \(empty dataset\)/,
  );

  const rmDir = join(root, 'an-rm');
  const { model, tokenizer } = loadCausalLM(modelDir);
  saveScalarPretrained(new ScalarModel(model), rmDir);
  tokenizer.save(rmDir);
  const ok = writeJsonl(join(root, 'ok.jsonl'), good);
  assert.throws(() => run(ok, { modelDir: rmDir }), /an-rm\/config\.json: field "architectures" .*reward\/value model/);
  assert.throws(() => run(ok, { modelDir: join(root, 'nowhere') }), /nowhere: model folder not found/);
  assert.throws(
    () => run(ok, { config: { ...tiny, margin: Number.NaN } }),
    /field "margin" \(--margin\) must be a number/,
  );
});
