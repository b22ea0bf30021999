// Frozen models held in bf16 (--bf16): the reference policy's log-probs and the reward model's scores stay within a
// stated tolerance of the f32 model's, and the trainers hold them so: GRPO's first rollout samples the reference
// itself, so its KL to a bf16 reference is ~0, and PPO's scores through a bf16 reward model are the f32 ones.
// The responses compared are the same: a decode step reads the policy's f32 weights under autocast too.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { run as ppoCli } from '../src/cli/commands/ppo.js';
import { loadPretrained, loadRewardModel, ScalarModel, saveScalarPretrained } from '../src/models/index.js';
import { inlinePrompts } from '../src/rlhf/data.js';
import { grpoDefaults, trainGrpo } from '../src/rlhf/grpo.js';
import { rewardModelFn, valueOnRewardModel } from '../src/rlhf/reward_fn.js';
import { pack, tokenLogps } from '../src/rlhf/rollout.js';
import { autocast, backward, noGrad, Rng, randn, sum, tidy } from '../src/tensor/index.js';
import { Tokenizer } from '../src/tokenizer/index.js';
import { readMetrics } from '../src/train/metrics.js';
import { WORDS, writeJsonl, writeTinyModel } from './helpers/tiny_lm.js';

const root = mkdtempSync(join(tmpdir(), 'ik-frozen-bf16-'));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = writeTinyModel(join(root, 'sft'), { nEmbd: 64 });
const rmDir = join(root, 'rm');
{
  const rm = new ScalarModel(loadPretrained(modelDir), new Rng(1));
  rm.score.weight.f32.set(randn(rm.score.weight.shape, new Rng(2)).f32);
  saveScalarPretrained(rm, rmDir);
  Tokenizer.fromDir(modelDir).save(rmDir);
}
const rng = new Rng(3);
const rows = Array.from({ length: 6 }, (_, b) => ({
  prompt: Array.from({ length: 5 + b }, () => 1 + rng.int(250)),
  response: Array.from({ length: 7 - (b % 3) }, () => 1 + rng.int(250)),
}));
const episodes = { prompts: rows.map((r) => r.prompt), responses: rows.map((r) => r.response) };
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i])));

// bf16 keeps 8 bits of mantissa (relative rounding 2^-9 per weight); through two layers the sums stay well inside
// these bounds (measured: log-probs within 1e-3; scores within 0.6 % of max(1, |score|), 1.2 % through PPO).
const LOGP_TOL = 1e-2;
const SCORE_TOL = 2e-2;
const scoresNear = (a: number[], b: number[]) =>
  a.every((x, i) => Math.abs(x - b[i]) <= SCORE_TOL * Math.max(1, Math.abs(x)));

test(`a bf16 reference's log-probs are within ${LOGP_TOL} of the f32 model's, a bf16 reward model's scores within ${SCORE_TOL} × max(1, |score|)`, () => {
  const logps = (dtype: 'f32' | 'bf16') =>
    noGrad(() => tidy(() => Array.from(tokenLogps(loadPretrained(modelDir, { dtype }), pack(rows), 1).logp.f32)));
  const f32 = logps('f32');
  const bf16 = logps('bf16');
  assert.ok(maxDiff(f32, bf16) < LOGP_TOL, `log-probs differ by ${maxDiff(f32, bf16)}`);
  assert.ok(maxDiff(f32, bf16) > 0, 'the bf16 model is really bf16');
  // Under autocast (the policy's side of --bf16) the f32 model is as near.
  const autocastF32 = noGrad(() =>
    tidy(() => autocast('bf16', () => Array.from(tokenLogps(loadPretrained(modelDir), pack(rows), 1).logp.f32))),
  );
  assert.ok(maxDiff(autocastF32, bf16) < LOGP_TOL);
  const scores = (dtype: 'f32' | 'bf16') => {
    const rm = loadRewardModel(rmDir, { dtype }).model;
    assert.equal(rm.score.weight.dtype, dtype);
    return rewardModelFn(rm, 0)([], [], episodes);
  };
  const s32 = scores('f32');
  const s16 = scores('bf16');
  assert.ok(Math.max(...s32.map(Math.abs)) > 0.1, 'scores are not all near 0');
  assert.ok(scoresNear(s32, s16), `scores ${s32} vs ${s16}`);
});

test('grpo --bf16: the reference is a bf16 copy (KL at the first rollout ~0, not exactly 0); without it KL is 0', async () => {
  const run = async (bf16: boolean) => {
    const out = join(root, `grpo-${bf16}`);
    await trainGrpo({
      policyDir: modelDir,
      prompts: inlinePrompts(WORDS.slice(0, 2).map((w) => `say ${w}`)),
      outDir: out,
      config: { ...grpoDefaults, steps: 1, batchSize: 2, groupSize: 2, miniBatchSize: 4, maxNewTokens: 6, bf16 },
      verifier: (_p, c) => c.length,
      log: () => {},
      quiet: true,
    });
    return Number(readMetrics(join(out, 'metrics.jsonl'))[0]['objective/kl']);
  };
  assert.equal(await run(false), 0);
  const kl = await run(true);
  assert.ok(kl !== 0 && Math.abs(kl) < 1e-2, `KL to the bf16 reference at the first rollout: ${kl}`);
});

test('ppo --bf16: the same responses, scored by the bf16 reward model as the f32 one within tolerance; KL ~0', async () => {
  const prompts = writeJsonl(
    join(root, 'prompts.jsonl'),
    WORDS.slice(0, 2).map((w) => ({ prompt: `say ${w}` })),
  );
  const samplesOf = async (bf16: boolean) => {
    const out = join(root, `ppo-${bf16}`);
    const args = ['--policy', modelDir, '--reward', rmDir, '--prompts', prompts, '--out', out];
    const cfg = ['--steps', '1', '--batch-size', '2', '--mini-batch-size', '2', '--max-new-tokens', '5'];
    assert.equal(await ppoCli([...args, ...cfg, ...(bf16 ? ['--bf16'] : [])]), 0);
    return readFileSync(join(out, 'samples.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { response: string; score: number; kl: number });
  };
  const f32 = await samplesOf(false);
  const bf16 = await samplesOf(true);
  assert.deepEqual(
    bf16.map((s) => s.response),
    f32.map((s) => s.response),
  );
  assert.ok(
    scoresNear(
      f32.map((s) => s.score),
      bf16.map((s) => s.score),
    ),
    `${f32.map((s) => s.score)} vs ${bf16.map((s) => s.score)}`,
  );
  assert.ok(f32.every((s) => s.kl === 0));
  assert.ok(bf16.every((s) => Math.abs(s.kl) < 5e-2) && bf16.some((s) => s.kl !== 0), `${bf16.map((s) => s.kl)}`);
});

test('LoRA under --bf16: the frozen base (a shared reward/value trunk too) is held in bf16, adapters and head stay f32, and their gradients through it are the f32 base’s under autocast within tolerance', () => {
  const lora = { r: 4, alpha: 8, dropout: 0, targets: null };
  const gradsOf = (frozenDtype: 'f32' | 'bf16') => {
    const rm = loadRewardModel(rmDir, { dtype: frozenDtype }).model;
    const { value } = valueOnRewardModel(rm, 0, lora, 7);
    if (frozenDtype === 'bf16') value.toDtype('bf16', { frozenOnly: true });
    const named = new Map(value.namedParameters());
    if (frozenDtype === 'bf16') {
      for (const [name, t] of named)
        assert.equal(t.dtype, t.ndim === 2 && !/lora_|^score\./.test(name) ? 'bf16' : 'f32', name);
      assert.equal(rm.trunk, value.trunk, 'one trunk');
    }
    // B starts at zero: move it (to a trained adapter's scale) so that A gets a gradient too.
    for (const [name, t] of named)
      if (name.endsWith('lora_B.weight')) t.f32.set(randn(t.shape, new Rng(9)).f32.map((x) => x * 0.01));
    tidy(() =>
      autocast('bf16', () => {
        const p = pack(rows);
        backward(sum(value.scoresPerToken(p.ids, { attentionMask: p.mask })));
      }),
    );
    return new Map(value.namedTrainableParameters().map(([n, t]) => [n, Array.from(t.grad!.f32)]));
  };
  const f32 = gradsOf('f32');
  const bf16 = gradsOf('bf16');
  assert.deepEqual([...bf16.keys()], [...f32.keys()]);
  assert.ok([...f32.keys()].some((n) => n.includes('lora_A')) && f32.has('score.weight'));
  for (const [name, g] of f32) {
    const scale = Math.max(...g.map(Math.abs));
    assert.ok(scale > 0, `${name}: no gradient`);
    // Measured: within 0.6 % of the largest entry (autocast itself is 0.7 % from f32).
    assert.ok(maxDiff(g, bf16.get(name)!) <= 0.03 * scale, `${name}: ${maxDiff(g, bf16.get(name)!)} vs ${scale}`);
  }
});

test('ppo --lora-r --bf16 with the value model on the reward model: runs, KL 0 at the first rollout, --merge writes loadable folders', async () => {
  const prompts = writeJsonl(
    join(root, 'prompts-lora.jsonl'),
    WORDS.slice(0, 2).map((w) => ({ prompt: `say ${w}` })),
  );
  const out = join(root, 'ppo-lora-bf16');
  const args = ['--policy', modelDir, '--reward', rmDir, '--prompts', prompts, '--out', out, '--bf16'];
  const cfg = ['--steps', '2', '--batch-size', '2', '--mini-batch-size', '2', '--max-new-tokens', '5'];
  assert.equal(await ppoCli([...args, ...cfg, '--lora-r', '4', '--merge', '--lr', '0.01', '--value-lr', '0.01']), 0);
  const m = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(Number(m[0]['objective/kl']), 0, 'adapters start at zero: the policy is its reference');
  assert.ok(m.every((r) => Number.isFinite(Number(r['value/loss'])) && Number(r['value/grad_norm']) > 0));
  for (const dir of [join(out, 'merged'), join(out, 'value', 'merged')])
    assert.ok(readFileSync(join(dir, 'config.json'), 'utf8').length > 0, dir);
  const merged = loadPretrained(join(out, 'merged'));
  assert.ok(merged.parameters().every((t) => t.dtype === 'f32' && t.f32.every(Number.isFinite)));
});
