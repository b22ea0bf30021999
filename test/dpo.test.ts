import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { run as dpoCli } from '../src/cli/commands/dpo.js';
import { loadCausalLM, readComparisons, type SftExample, sftBatch } from '../src/rlhf/data.js';
import { type DpoConfig, type DpoLossType, dpoDefaults, dpoLoss, sequenceLogps, trainDpo } from '../src/rlhf/dpo.js';
import { encodePairs } from '../src/rlhf/preferences.js';
import { backward, crossEntropy, noGrad, reshape, tensor, tidy } from '../src/tensor/index.js';
import { Formatter } from '../src/tokenizer/index.js';
import { readMetrics } from '../src/train/metrics.js';
import { assertSameRun } from './helpers/cli.js';
import { WORDS, writeJsonl, writeTinyModel } from './helpers/tiny_lm.js';

const root = mkdtempSync(join(tmpdir(), 'ik-dpo-'));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = writeTinyModel(join(root, 'base'));
const quiet = () => {};

interface FixtureCase {
  lossType: DpoLossType;
  beta: number;
  labelSmoothing: number;
  policyChosen: number[];
  policyRejected: number[];
  refChosen: number[];
  refRejected: number[];
  loss: number;
  gradChosen: number[];
  gradRejected: number[];
}
const fixture = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'dpo_loss.json'), 'utf8'),
) as { cases: FixtureCase[] };

const close = (got: number, want: number, what: string) =>
  assert.ok(Math.abs(got - want) <= 1e-5 + 1e-4 * Math.abs(want), `${what}: ${got} vs torch ${want}`);

test('DPO loss and its gradient w.r.t. the policy log-probs match PyTorch (sigmoid, label smoothing, IPO)', () => {
  assert.equal(fixture.cases.length, 5);
  for (const c of fixture.cases) {
    tidy(() => {
      const pc = tensor(c.policyChosen);
      const pr = tensor(c.policyRejected);
      pc.requiresGrad = true;
      pr.requiresGrad = true;
      const r = dpoLoss(pc, pr, tensor(c.refChosen), tensor(c.refRejected), c);
      const what = `${c.lossType} β ${c.beta} ε ${c.labelSmoothing}`;
      close(r.loss.item(), c.loss, `${what} loss`);
      backward(r.loss);
      for (const [i, g] of c.gradChosen.entries()) close(pc.grad!.f32[i], g, `${what} ∂/∂chosen[${i}]`);
      for (const [i, g] of c.gradRejected.entries()) close(pr.grad!.f32[i], g, `${what} ∂/∂rejected[${i}]`);
      // The implicit rewards are β·(π − π_ref).
      close(r.chosenRewards[0], c.beta * (c.policyChosen[0] - c.refChosen[0]), `${what} rewards/chosen`);
    });
  }
});

test('sequence log-probs are the sums of the response tokens’ log-probs, whatever the padding', () => {
  const { model, tokenizer } = loadCausalLM(modelDir);
  model.eval();
  const fmt = new Formatter(tokenizer, modelDir);
  const rows: SftExample[] = ['red', 'green blue gold', 'teal teal'].map((w, i) => {
    const prompt = fmt.prompt(`say ${WORDS[i]}`);
    return { ids: [...prompt, ...fmt.response(w)], promptLength: prompt.length, file: 'x', line: i + 1 };
  });
  noGrad(() =>
    tidy(() => {
      const batched = sequenceLogps(model, rows, fmt.padId, false).toArray();
      const averaged = sequenceLogps(model, rows, fmt.padId, true).toArray();
      rows.forEach((r, i) => {
        // One row alone, no padding: −(summed cross-entropy over its response tokens).
        const { ids, mask, targets } = sftBatch([r], fmt.padId);
        const logits = model.forward(ids, { attentionMask: mask });
        const V = logits.size(-1);
        const alone = -crossEntropy(reshape(logits, [-1, V]), reshape(targets, [-1]), { reduction: 'sum' }).item();
        close(batched[i], alone, `row ${i}`);
        close(averaged[i], alone / (r.ids.length - r.promptLength), `row ${i} mean`);
      });
    }),
  );
});

test('rankings give all C(K,2) pairs best→worst; pairwise lines one pair', () => {
  const file = writeJsonl(join(root, 'mixed.jsonl'), [
    { prompt: 'say red', responses: ['blue', 'red', 'gold'], ranking: [1, 2, 0] },
    { prompt: 'say gold', chosen: 'gold', rejected: 'pink' },
  ]);
  const { tokenizer } = loadCausalLM(modelDir);
  const fmt = new Formatter(tokenizer, modelDir);
  const pairs = encodePairs(readComparisons(file, 'auto').records, fmt, 48).records;
  const text = (ids: number[], p: number) => tokenizer.decode(ids.slice(p, -1));
  assert.deepEqual(
    pairs.map((p) => [text(p.chosen, p.promptLength), text(p.rejected, p.promptLength), p.line]),
    [
      ['red', 'gold', 1],
      ['red', 'blue', 1],
      ['gold', 'blue', 1],
      ['gold', 'pink', 2],
    ],
  );
  assert.deepEqual(pairs[0].chosen.slice(0, pairs[0].promptLength), fmt.prompt('say red'));
});

test('a ranking with ties (as the labeling app exports it) gives only the pairs across places', () => {
  const file = writeJsonl(join(root, 'tied.jsonl'), [
    { prompt: 'say red', responses: ['blue', 'red', 'gold', 'pink'], ranking: [1, [2, 3], 0] },
  ]);
  const { tokenizer } = loadCausalLM(modelDir);
  const fmt = new Formatter(tokenizer, modelDir);
  const pairs = encodePairs(readComparisons(file, 'auto').records, fmt, 48).records;
  const text = (ids: number[], p: number) => tokenizer.decode(ids.slice(p, -1));
  assert.deepEqual(
    pairs.map((p) => [text(p.chosen, p.promptLength), text(p.rejected, p.promptLength)]),
    [
      ['red', 'gold'],
      ['red', 'pink'],
      ['red', 'blue'],
      ['gold', 'blue'],
      ['pink', 'blue'],
    ],
  );
  // One tie orders nothing: refused with its file:line like any degenerate line.
  const allTied = writeJsonl(join(root, 'one-tie.jsonl'), [{ prompt: 'p', responses: ['a', 'b'], ranking: [[0, 1]] }]);
  assert.throws(() => readComparisons(allTied, 'auto'), /one-tie\.jsonl:1: "ranking" is one tie/);
});

// A separable toy set: the chosen answer repeats the asked word, the rejected one names another.
function preferences(n: number) {
  return Array.from({ length: n }, (_, i) => {
    const w = WORDS[i % WORDS.length];
    const other = WORDS[(i + 3) % WORDS.length];
    return i % 2 === 0
      ? { prompt: `say ${w}`, chosen: `${w} ${w}`, rejected: `${other} ${other}` }
      : { prompt: `say ${w}`, responses: [`${other}`, `${w} ${w}`, `${w}`], ranking: [1, 2, 0] };
  });
}

const tiny: DpoConfig = {
  ...dpoDefaults,
  epochs: 4,
  batchSize: 4,
  lr: 3e-3,
  warmupRatio: 0,
  beta: 0.1,
  valFraction: 0,
};

test('dpo through the CLI: files and TRL metrics are written and rewards/accuracies rises on a separable set', async () => {
  const data = writeJsonl(join(root, 'prefs.jsonl'), preferences(24));
  const val = writeJsonl(join(root, 'prefs_val.jsonl'), preferences(8));
  const out = join(root, 'dpo-cli');
  const args = ['--model', modelDir, '--data', data, '--val', val, '--out', out, '--epochs', '4', '--batch-size', '4'];
  const code = await dpoCli([...args, '--lr', '1e-2', '--beta', '0.5']);
  assert.equal(code, 0);
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'dpo_config.json', 'metrics.jsonl'])
    assert.ok(existsSync(join(out, f)), `${f} written`);
  const metrics = readMetrics(join(out, 'metrics.jsonl'));
  const steps = metrics.filter((m) => m['train/loss'] !== undefined);
  // 12 pairwise lines + 12 rankings of 3 (3 pairs each) = 48 pairs → 12 steps an epoch.
  assert.equal(steps.length, 48);
  for (const k of ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen'])
    assert.ok(Number.isFinite(Number(steps[0][k])), `${k} logged`);
  // At the first step the policy is the reference: every margin is 0 and no pair is ordered yet.
  assert.equal(steps[0]['rewards/accuracies'], 0);
  assert.ok(Math.abs(Number(steps[0]['rewards/margins'])) < 1e-6);
  const late = steps.slice(-12);
  const acc = late.reduce((a, m) => a + Number(m['rewards/accuracies']), 0) / late.length;
  assert.ok(acc > 0.8, `late training accuracy ${acc}`);
  const evals = metrics.filter((m) => m['eval/loss'] !== undefined);
  assert.equal(evals.length, 4);
  assert.ok(
    Number(evals[3]['eval/rewards/accuracies']) > 0.8,
    `held-out accuracy ${evals[3]['eval/rewards/accuracies']}`,
  );
  assert.ok(Number(evals[3]['eval/loss']) < Math.log(2), 'held-out loss below log 2 (the loss at the reference)');
  assert.ok(Number(evals[3]['eval/rewards/margins']) > 0);
  // A second run into the same folder is refused before it touches anything, its config file included.
  const saved = readFileSync(join(out, 'dpo_config.json'), 'utf8');
  await assert.rejects(dpoCli([...args, '--beta', '0.3']), /dpo-cli: holds checkpoints of an earlier run/);
  assert.equal(readFileSync(join(out, 'dpo_config.json'), 'utf8'), saved);
});

test('a run stopped mid-epoch and resumed repeats the uninterrupted run exactly (reference log-probs included)', () => {
  const data = writeJsonl(join(root, 'prefs-resume.jsonl'), preferences(12));
  const config = { ...tiny, epochs: 2, valFraction: 0.25 };
  const straight = join(root, 'straight');
  trainDpo({ modelDir, dataFile: data, outDir: straight, config, log: quiet });
  const resumed = join(root, 'resumed');
  const stop = new AbortController();
  const first = trainDpo({
    modelDir,
    dataFile: data,
    outDir: resumed,
    config,
    log: quiet,
    signal: stop.signal,
    onStep: (step) => {
      if (step === 3) stop.abort();
    },
  });
  assert.equal(first.aborted, true);
  trainDpo({ modelDir, dataFile: data, outDir: resumed, config, log: quiet, resume: true });
  assertSameRun(resumed, straight);
});

test('IPO and label smoothing run and log their loss', () => {
  const data = writeJsonl(join(root, 'prefs-ipo.jsonl'), preferences(8));
  const r = trainDpo({
    modelDir,
    dataFile: data,
    outDir: join(root, 'ipo'),
    config: { ...tiny, epochs: 1, lossType: 'ipo', valFraction: 0.25 },
    log: quiet,
  });
  assert.equal(r.aborted, false);
  // At the reference every margin is 0, so the IPO loss is (1/2β)² = 25.
  const first = readMetrics(join(root, 'ipo', 'metrics.jsonl'))[0];
  close(Number(first['train/loss']), 25, 'IPO loss at the reference');
  const ls = trainDpo({
    modelDir,
    dataFile: data,
    outDir: join(root, 'ls'),
    config: { ...tiny, epochs: 1, labelSmoothing: 0.1 },
    log: quiet,
  });
  assert.equal(ls.valPairs, 0);
  close(
    Number(readMetrics(join(root, 'ls', 'metrics.jsonl'))[0]['train/loss']),
    Math.log(2),
    'σ loss at the reference',
  );
});

test('bad input: a clear error naming file, line and field before any compute, nothing written', () => {
  const run = (rows: unknown[], extra: Partial<Parameters<typeof trainDpo>[0]> = {}) => {
    const out = join(root, `bad-${Math.random().toString(36).slice(2)}`);
    const dataFile = writeJsonl(join(root, 'bad.jsonl'), rows);
    try {
      return trainDpo({ modelDir, dataFile, outDir: out, config: tiny, log: quiet, ...extra });
    } finally {
      assert.equal(existsSync(out), false, 'nothing written');
    }
  };
  const ok = { prompt: 'say red', chosen: 'red', rejected: 'blue' };
  assert.throws(
    () => run([ok, { prompt: 'say red', chosen: 'red red', rejected: 'red red' }]),
    /bad\.jsonl:2: "chosen" and "rejected" are the same text/,
  );
  assert.throws(
    () => run([{ prompt: 'say red', responses: ['red', 'blue', 'red'], ranking: [0, 1, 2] }]),
    /bad\.jsonl:1: "responses\[2\]" is the same text as "responses\[0\]"/,
  );
  assert.throws(
    () => run([ok, ok, { prompt: 'say red', chosen: '', rejected: 'blue' }]),
    /bad\.jsonl:3: "chosen" is empty/,
  );
  assert.throws(
    () => run([{ prompt: 'say red', responses: ['red', ' ', 'blue'], ranking: [0, 2, 1] }]),
    /bad\.jsonl:1: "responses\[1\]" is empty/,
  );
  assert.throws(
    () => run([{ prompt: 'say red', responses: ['red'], ranking: [0] }]),
    /bad\.jsonl:1: "responses" must hold 2\.\.9 items/,
  );
  assert.throws(() => run([ok], { modelDir: join(root, 'nowhere') }), /nowhere: model folder not found/);
  assert.throws(() => run([ok], { refModelDir: join(root, 'no-ref') }), /no-ref: model folder not found/);
  assert.throws(() => run([ok], { config: { ...tiny, beta: 0 } }), /field "beta" \(--beta\) must be a number > 0/);
  assert.throws(
    () => run([ok], { config: { ...tiny, lossType: 'ipo', labelSmoothing: 0.1 } }),
    /field "labelSmoothing" must be 0 with lossType "ipo"/,
  );
});

test('--skip-bad skips a degenerate line and names it; the rest trains', () => {
  const ok = { prompt: 'say red', chosen: 'red', rejected: 'blue' };
  const dataFile = writeJsonl(join(root, 'skip.jsonl'), [
    ok,
    { prompt: 'say red', chosen: 'x', rejected: 'x' },
    ok,
    ok,
  ]);
  const r = trainDpo({
    modelDir,
    dataFile,
    outDir: join(root, 'skip'),
    config: { ...tiny, epochs: 1 },
    log: quiet,
    skipBad: true,
  });
  assert.equal(r.trainPairs, 3);
  assert.match(r.skipped.join('\n'), /skip\.jsonl:2: .*same text/);
});
