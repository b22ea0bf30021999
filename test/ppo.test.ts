import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { run as ppoCli } from '../src/cli/commands/ppo.js';
import { loadPretrained, ScalarModel, savePretrained, saveScalarPretrained } from '../src/models/index.js';
import { readPrompts } from '../src/rlhf/data.js';
import { PPOTrainer } from '../src/rlhf/ppo.js';
import { policyLoss, valueLoss } from '../src/rlhf/ppo_loss.js';
import { countReward, type RewardFn, tokenCountReward } from '../src/rlhf/reward_fn.js';
import { backward, Rng, randn, tensor, tidy } from '../src/tensor/index.js';
import { readMetrics } from '../src/train/metrics.js';
import { tinyGPT2, tinySetup, tinyTokenizer } from './helpers/ppo_setup.js';

const closeAll = (got: ArrayLike<number>, want: number[], tol = 1e-5) => {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < tol, `[${i}] ${got[i]} vs ${want[i]}`);
};
const tmp = () => mkdtempSync(join(tmpdir(), 'ik-ppo-'));
const leaf = (v: number[]) => {
  const t = tensor(v);
  t.requiresGrad = true;
  return t;
};

test('clipped policy loss, clipfrac, approxkl and gradients match a hand computation', () => {
  tidy(() => {
    // ratios 1, 1.5, 0.5, e^0.1 (masked out), 0.5
    const logp = leaf([0, Math.log(1.5), Math.log(0.5), 0.1, Math.log(0.5)]);
    const old = tensor([0, 0, 0, 0, 0]);
    const adv = tensor([1, 1, -2, 3, 1]);
    const mask = tensor([1, 1, 1, 0, 1]);
    const r = policyLoss(logp, old, adv, mask, 0.2);
    // per token max(−A·r, −A·clip(r)): −1; max(−1.5, −1.2) = −1.2 (clipped); max(1, 1.6) = 1.6 (clipped); −0.5
    closeAll([r.loss.item()], [(-1 - 1.2 + 1.6 - 0.5) / 4]);
    assert.equal(r.clipfrac, 2 / 4);
    closeAll([r.approxkl], [(0.5 * (Math.log(1.5) ** 2 + 2 * Math.log(0.5) ** 2)) / 4]);
    backward(r.loss);
    // d/dlogp of −A·r = −A·r where unclipped wins; 0 where the clipped term wins or the mask is 0
    closeAll(logp.grad!.f32, [-1 / 4, 0, 0, 0, -0.5 / 4]);
    assert.throws(() => policyLoss(logp, old, adv, tensor([0, 0, 0, 0, 0]), 0.2), /policyLoss: mask selects no token/);
    assert.throws(() => policyLoss(logp, tensor([0]), adv, mask, 0.2), /policyLoss: shape \[1\] does not match/);
  });
});

test('clipped value loss, clipfrac and gradients match a hand computation', () => {
  tidy(() => {
    const values = leaf([1, 2, 0.5]);
    const old = tensor([1, 1, 1]);
    const returns = tensor([2, 0, 0.4]);
    const r = valueLoss(values, old, returns, tensor([1, 1, 1]), 0.2);
    // (v−R)² = 1, 4, 0.01; clipped v = 1, 1.2, 0.8 → 1, 1.44, 0.16; max = 1, 4, 0.16
    closeAll([r.loss.item()], [(0.5 * (1 + 4 + 0.16)) / 3]);
    assert.equal(r.clipfrac, 1 / 3);
    backward(r.loss);
    // ½·2(v−R)/3 where unclipped wins (a tie passes the same gradient through both), 0 where clipping saturates
    closeAll(values.grad!.f32, [-1 / 3, 2 / 3, 0]);
  });
});

test('PPO raises a programmatic reward while the adaptive controller steers β towards the KL target', () => {
  const target = 6;
  // Reward: how many times the response contains the letter "a", capped at 2 so that KL beyond the cap buys nothing.
  const capped: RewardFn = (p, r, t) => countReward('a')(p, r, t).map((n) => Math.min(n, 2));
  const dir = tmp();
  const tr = new PPOTrainer(
    tinySetup(dir, capped, {
      steps: 50,
      lr: 2e-3,
      valueLr: 2e-3,
      adaptiveKl: true,
      klCoef: 0.1,
      targetKl: target,
      klHorizon: 16,
    }),
  );
  const ms = tr.train();
  const avg = (from: number, to: number, k: string) =>
    ms.slice(from, to).reduce((s, m) => s + Number(m[k]), 0) / (to - from);
  const early = avg(0, 10, 'objective/scores');
  const late = avg(40, 50, 'objective/scores');
  assert.ok(late > early + 0.8, `mean score ${early.toFixed(3)} → ${late.toFixed(3)}`);
  const lateKl = avg(30, 50, 'objective/kl');
  assert.ok(lateKl > target / 2 && lateKl < target * 2, `KL over the last 20 steps ${lateKl.toFixed(2)}`);
  // β moves up exactly when the measured KL is above target, down when below.
  for (let i = 0; i + 1 < ms.length; i++) {
    const rising = Number(ms[i + 1]['objective/kl_coef']) > Number(ms[i]['objective/kl_coef']);
    assert.equal(rising, Number(ms[i]['objective/kl']) > target, `step ${i + 1}`);
  }
  for (const k of [
    'policy/clipfrac',
    'policy/approxkl',
    'value/loss',
    'objective/entropy',
    'time/rollout',
    'time/generate',
    'time/rollout_tokens_per_second',
  ])
    assert.ok(Number.isFinite(Number(ms[49][k])), k);
  assert.equal(readMetrics(join(dir, 'metrics.jsonl')).length, 50);
  tr.dispose();
  rmSync(dir, { recursive: true });
});

const withoutTimes = (m: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'time' && !k.startsWith('time/')));

test('a run stopped after k steps and resumed from its checkpoint repeats the uninterrupted run exactly (PPO-ptx)', () => {
  const ptx = 'the quiet hills and the bright stars over a banana table at dawn. '.repeat(6);
  const reward = tokenCountReward(tinyTokenizer().encode(' a')[0]);
  const config = { steps: 6, adaptiveKl: true, targetKl: 1, klHorizon: 8, ptxCoef: 0.5, sampleEvery: 2 };
  const a = tmp();
  const full = new PPOTrainer(tinySetup(a, reward, config, ptx));
  full.train();
  const b = tmp();
  const first = new PPOTrainer(tinySetup(b, reward, config, ptx));
  first.train({ stopAfter: 4 });
  assert.equal(first.stepsDone, 4);
  // A fresh process's worth of objects: new models from the same "SFT" weights, state from the checkpoint.
  const setup = tinySetup(b, reward, config, ptx);
  const second = new PPOTrainer(setup);
  second.train({ resume: true });
  assert.equal(second.stepsDone, 6);
  const ma = readMetrics(join(a, 'metrics.jsonl')).map(withoutTimes);
  const mb = readMetrics(join(b, 'metrics.jsonl')).map(withoutTimes);
  assert.equal(ma.length, 6);
  assert.deepEqual(mb, ma);
  assert.ok(ma.every((m) => Number.isFinite(Number(m['ptx/loss']))));
  assert.deepEqual(readFileSync(join(b, 'samples.jsonl'), 'utf8'), readFileSync(join(a, 'samples.jsonl'), 'utf8'));
  // Weights, EMA and value model too.
  full.save(join(a, 'final'));
  second.save(join(b, 'final'));
  for (const f of ['model.safetensors', 'ema/model.safetensors', 'value/model.safetensors'])
    assert.ok(readFileSync(join(a, 'final', f)).equals(readFileSync(join(b, 'final', f))), f);
  assert.ok(
    !readFileSync(join(a, 'final', 'model.safetensors')).equals(
      readFileSync(join(a, 'final', 'ema/model.safetensors')),
    ),
  );
  const cfg = JSON.parse(readFileSync(join(b, 'ppo_config.json'), 'utf8'));
  assert.equal(cfg.ptxCoef, 0.5);
  for (const t of [full, first, second]) t.dispose();
  rmSync(a, { recursive: true });
  rmSync(b, { recursive: true });
});

test('plain PPO (γ_ptx = 0) logs no ptx loss; PPO-ptx with a large γ_ptx lowers the LM loss on the corpus', () => {
  const ptx = 'the quiet hills and the bright stars over a banana table at dawn. '.repeat(6);
  const reward = countReward('a');
  const plain = new PPOTrainer(tinySetup(tmp(), reward, { steps: 2, ptxCoef: 0 }, ptx));
  assert.ok(plain.train().every((m) => !('ptx/loss' in m)));
  const ptxRun = new PPOTrainer(tinySetup(tmp(), reward, { steps: 6, ptxCoef: 5 }, ptx));
  const ms = ptxRun.train();
  const first = Number(ms[0]['ptx/loss']);
  const last = Number(ms[5]['ptx/loss']);
  assert.ok(last < first - 0.5, `ptx/loss ${first} → ${last}`);
  plain.dispose();
  ptxRun.dispose();
});

test('bad input fails before any compute, naming the file and line or the field', () => {
  const dir = tmp();
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, '{"prompt": "ok"}\n\n{"prompt": 3}\n');
  assert.throws(() => readPrompts(bad), /bad\.jsonl:3: "prompt" must be a string/);
  writeFileSync(bad, '{"prompt": "ok"}\nnot json\n');
  assert.throws(() => readPrompts(bad), /bad\.jsonl:2: invalid JSON/);
  writeFileSync(bad, '\n\n');
  assert.throws(() => readPrompts(bad), /bad\.jsonl: no prompts/);
  const long = join(dir, 'long.jsonl');
  writeFileSync(long, `{"prompt": "a cat"}\n{"prompt": "${'stars '.repeat(40)}"}\n`);
  const setup = tinySetup(dir, countReward('a'), {});
  assert.throws(
    () => new PPOTrainer({ ...setup, prompts: readPrompts(long) }),
    /long\.jsonl:2: prompt of \d+ tokens \+ maxNewTokens 8 exceeds the context of 48/,
  );
  assert.throws(
    () => new PPOTrainer({ ...setup, config: { ...setup.config, klEstimator: 'k2' as 'k1' } }),
    /"klEstimator"/,
  );
  assert.throws(
    () => new PPOTrainer({ ...setup, config: { ...setup.config, miniBatchSize: 16 } }),
    /"miniBatchSize" \(16\) exceeds batchSize/,
  );
  assert.throws(
    () => new PPOTrainer({ ...setup, ptxTokens: [1, 2, 3] }),
    /pretraining corpus has 3 tokens, fewer than one window of 17/,
  );
  rmSync(dir, { recursive: true });
});

test('instructkit ppo: reward model folder, PPO-ptx, config file; output is a loadable HF folder; wrong folders refused', async () => {
  const dir = tmp();
  const tok = tinyTokenizer();
  const sft = join(dir, 'sft');
  savePretrained(tinyGPT2(tok.vocabSize), sft);
  tok.save(sft);
  const rm = new ScalarModel(tinyGPT2(tok.vocabSize, 1), new Rng(2));
  rm.score.weight.f32.set(randn(rm.score.weight.shape, new Rng(3), 0.5).f32);
  saveScalarPretrained(rm, join(dir, 'rm'));
  writeFileSync(join(dir, 'prompts.jsonl'), '{"prompt": "the cat"}\n{"prompt": "a dog"}\n{"prompt": "we saw"}\n');
  writeFileSync(join(dir, 'corpus.txt'), 'the cat sat on the mat and the dog sat on the log. '.repeat(10));
  writeFileSync(
    join(dir, 'ppo.yaml'),
    'batchSize: 2\nminiBatchSize: 1\nppoEpochs: 1\nmaxNewTokens: 4\nptxSeqLen: 16\nptxBatchSize: 1\nsampleEvery: 1\n',
  );
  const common = ['--prompts', join(dir, 'prompts.jsonl'), '--config', join(dir, 'ppo.yaml'), '--steps', '2'];
  const out = join(dir, 'out');
  const code = await ppoCli([
    '--policy',
    sft,
    '--reward',
    join(dir, 'rm'),
    '--out',
    out,
    '--ptx',
    join(dir, 'corpus.txt'),
    '--ptx-coef',
    '0.1',
    ...common,
  ]);
  assert.equal(code, 0);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'ema/model.safetensors', 'value/config.json'])
    assert.ok(existsSync(join(out, f)), f);
  const policy = loadPretrained(out);
  assert.equal(policy.config.vocabSize, tok.vocabSize);
  const metrics = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(metrics.length, 2);
  assert.ok(Number.isFinite(Number(metrics[1]['ptx/loss'])));
  assert.equal(readFileSync(join(out, 'samples.jsonl'), 'utf8').trim().split('\n').length, 4);
  await assert.rejects(
    ppoCli(['--policy', sft, '--reward', join(dir, 'rm'), '--out', out, ...common]),
    /holds checkpoints of an earlier run; pass --resume/,
  );
  const more = [...common.slice(0, -1), '3', '--resume', '--ptx', join(dir, 'corpus.txt'), '--ptx-coef', '0.1'];
  assert.equal(await ppoCli(['--policy', sft, '--reward', join(dir, 'rm'), '--out', out, ...more]), 0);
  assert.deepEqual(
    readMetrics(join(out, 'metrics.jsonl')).map((m) => m.step),
    [1, 2, 3],
  );
  await assert.rejects(
    ppoCli(['--policy', join(dir, 'rm'), '--reward', join(dir, 'rm'), '--out', join(dir, 'o2'), ...common]),
    /--policy .*rm: is a reward\/value model, not a causal LM/,
  );
  await assert.rejects(
    ppoCli(['--policy', sft, '--reward', sft, '--out', join(dir, 'o3'), ...common]),
    /--reward .*sft: is a language model folder, not a reward model/,
  );
  mkdirSync(join(dir, 'empty'));
  await assert.rejects(
    ppoCli(['--policy', join(dir, 'empty'), '--reward', 'count:a', '--out', join(dir, 'o4'), ...common]),
    /empty\/config\.json: file not found; .*empty is not a model folder/,
  );
  await assert.rejects(
    ppoCli([
      '--policy',
      sft,
      '--reward',
      'count:a',
      '--out',
      join(dir, 'o5'),
      ...common,
      '--config',
      join(dir, 'x.json'),
    ]),
    /x\.json: config file not found/,
  );
  rmSync(dir, { recursive: true });
});

test('reward functions: counts of text and of a token id', () => {
  const tokens = { prompts: [[1], [2]], responses: [[5, 7, 5], [7]] };
  assert.deepEqual(countReward('a')(['', ''], ['banana', 'xyz'], tokens), [3, 0]);
  assert.deepEqual(tokenCountReward(5)(['', ''], ['', ''], tokens), [2, 0]);
  assert.throws(() => countReward(''), /needle must not be empty/);
});
