import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { run as grpoCli } from '../src/cli/commands/grpo.js';
import { DEMO_CONFIGS } from '../src/demo/demo.js';
import worldChecker, { worldVerifier } from '../src/demo/verifier.js';
import { buildWorld } from '../src/demo/world/index.js';
import { loadPretrained, ScalarModel, saveScalarPretrained } from '../src/models/index.js';
import { inlinePrompts } from '../src/rlhf/data.js';
import { type GrpoConfig, groupAdvantages, grpoDefaults, k3Loss, trainGrpo } from '../src/rlhf/grpo.js';
import { verifierSource, weightedReward } from '../src/rlhf/reward_sources.js';
import { backward, tensor, tidy } from '../src/tensor/index.js';
import { Tokenizer } from '../src/tokenizer/index.js';
import { readMetrics } from '../src/train/metrics.js';
import { metricsWithoutTime } from './helpers/cli.js';
import { WORDS, writeJsonl, writeTinyModel } from './helpers/tiny_lm.js';

const root = mkdtempSync(join(tmpdir(), 'ik-grpo-'));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = writeTinyModel(join(root, 'sft'));
const promptsFile = writeJsonl(
  join(root, 'prompts.jsonl'),
  WORDS.map((w) => ({ prompt: `say ${w}` })),
);
const quiet = () => {};
// A verifier module: how often the completion says "red" (at most 2).
const redModule = join(root, 'red.mjs');
writeFileSync(
  redModule,
  'export default (prompt, completion) => Math.min((completion.match(/red/g) ?? []).length, 2);\n',
);

const near = (got: number, want: number, what = '') =>
  assert.ok(Math.abs(got - want) < 1e-6 * Math.max(1, Math.abs(want)), `${what} ${got} vs ${want}`);
const nearAll = (got: ArrayLike<number>, want: number[], what: string) => {
  assert.equal(got.length, want.length, what);
  for (const [i, w] of want.entries()) near(got[i], w, `${what}[${i}]`);
};

test('GRPO and RLOO advantages match hand-computed values', () => {
  // Group 1: mean 0.5, unbiased std √(4·0.25/3) = 0.57735…; group 2 has no spread: all 0.
  const grpo = groupAdvantages([1, 0, 0, 1, 2, 2, 2, 2], 4, 'grpo');
  const s = Math.sqrt(1 / 3) + 1e-4;
  nearAll(grpo, [0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s, 0, 0, 0, 0], 'grpo');
  // Without scaling (Dr. GRPO): r − mean.
  nearAll(groupAdvantages([3, 1, 2], 3, 'grpo', { scaleRewards: false }), [1, -1, 0], 'unscaled');
  // RLOO: r − mean of the other G − 1: 1 − (2+3+6)/3, 2 − (1+3+6)/3, 3 − (1+2+6)/3, 6 − (1+2+3)/3.
  const rloo = groupAdvantages([1, 2, 3, 6], 4, 'rloo');
  nearAll(rloo, [1 - 11 / 3, 2 - 10 / 3, 3 - 3, 6 - 2], 'rloo');
  // RLOO is the centred reward scaled by G/(G − 1).
  nearAll(
    rloo,
    [1, 2, 3, 6].map((r) => (4 / 3) * (r - 3)),
    'rloo as scaled centring',
  );
  assert.throws(() => groupAdvantages([1, 2, 3], 2, 'grpo'), /do not form groups of 2/);
  assert.throws(() => groupAdvantages([1], 1, 'rloo'), /G >= 2/);
});

test('k3 KL loss and its gradient match a hand computation', () => {
  tidy(() => {
    const logp = tensor([-1, -2, -0.5, -3]);
    logp.requiresGrad = true;
    const ref = tensor([-1.5, -1, -0.5, -9]);
    const mask = tensor([1, 1, 1, 0]);
    const loss = k3Loss(logp, ref, mask);
    const k3 = (lp: number, r: number) => Math.exp(r - lp) - (r - lp) - 1;
    near(loss.item(), (k3(-1, -1.5) + k3(-2, -1) + 0) / 3, 'loss');
    backward(loss);
    // d/dlogp [e^(r−l) − (r − l) − 1] = 1 − e^(r−l)
    nearAll(logp.grad!.f32, [(1 - Math.exp(-0.5)) / 3, (1 - Math.exp(1)) / 3, 0, 0], 'grad');
  });
});

test('weighted rewards: Σ weight·score per completion, each source’s mean logged', async () => {
  const a = verifierSource((_p, c) => c.length, 'len.js', 'len');
  const b = verifierSource(async (p) => (p === 'x' ? 1 : 0), 'is-x.js', 'is_x');
  const r = await weightedReward([a, b], [0.5, 2], ['x', 'y'], ['abcd', 'ab'], { prompts: [], responses: [] });
  assert.deepEqual(r.total, [0.5 * 4 + 2, 0.5 * 2]);
  assert.deepEqual(r.means, { 'rewards/len': 3, 'rewards/is_x': 0.5 });
});

test('the demo world checker scores a task’s reference answer 1 and a wrong one 0', () => {
  const world = buildWorld(0, { sizes: { sft: 5, rm: 5, ppo: 5, eval: 5 } });
  const verify = worldVerifier(world.ppo);
  for (const t of world.ppo) {
    assert.equal(verify(t.prompt, t.reference), 1, t.prompt);
    if (t.wrong.length > 0) assert.equal(verify(t.prompt, t.wrong[0]), 0, `${t.prompt}: ${t.wrong[0]}`);
  }
  assert.throws(() => verify('What is the capital of nowhere?', 'x'), /not a prompt of the demo world/);
  // The module's default export finds the demo's own prompts (seed 0, tiny and small worlds).
  const demo = buildWorld(0, { sizes: DEMO_CONFIGS.tiny.world });
  assert.equal(worldChecker(demo.ppo[7].prompt, demo.ppo[7].reference), 1);
});

const tiny: GrpoConfig = {
  ...grpoDefaults,
  steps: 24,
  batchSize: 4,
  groupSize: 4,
  miniBatchSize: 8,
  lr: 3e-3,
  maxNewTokens: 8,
  beta: 0.02,
  saveEvery: 0,
  sampleEvery: 1,
};

test('grpo through the CLI raises a verifier module’s reward and writes metrics, samples, config and the policy', async () => {
  const out = join(root, 'cli');
  const code = await grpoCli([
    ...['--policy', modelDir, '--prompts', promptsFile, '--out', out, '--reward-module', redModule],
    ...['--steps', '24', '--batch-size', '4', '--group-size', '4', '--mini-batch-size', '8', '--lr', '1e-2'],
    ...['--max-new-tokens', '8', '--beta', '0.02', '--save-every', '12'],
  ]);
  assert.equal(code, 0);
  for (const f of ['model.safetensors', 'tokenizer.json', 'grpo_config.json', 'metrics.jsonl', 'samples.jsonl'])
    assert.ok(existsSync(join(out, f)), `${f} written`);
  const ms = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(ms.length, 24);
  for (const k of ['reward', 'reward_std', 'rewards/red', 'objective/kl', 'policy/clipfrac', 'completions/mean_length'])
    assert.ok(Number.isFinite(Number(ms[23][k])), `${k} logged`);
  const avg = (from: number, to: number) => ms.slice(from, to).reduce((s, m) => s + Number(m.reward), 0) / (to - from);
  assert.ok(avg(18, 24) > avg(0, 6) + 1, `reward ${avg(0, 6).toFixed(3)} → ${avg(18, 24).toFixed(3)}`);
  // The KL term is in the loss: loss = policy/loss + β·k3 ≥ policy/loss.
  assert.ok(Number(ms[23]['train/loss']) >= Number(ms[23]['policy/loss']));
  const samples = readFileSync(join(out, 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(samples.filter((s) => s.step === 1).length, 16);
  assert.deepEqual(Object.keys(samples[0]), ['step', 'prompt', 'completion', 'reward', 'advantage']);
  // The saved policy loads as a model folder.
  assert.equal(loadPretrained(out).config.vocabSize, loadPretrained(modelDir).config.vocabSize);
});

test('RLOO with the KL in the reward, a reward model and a TypeScript module weighted together', async () => {
  const rmDir = join(root, 'rm');
  saveScalarPretrained(new ScalarModel(loadPretrained(modelDir)), rmDir);
  Tokenizer.fromDir(modelDir).save(rmDir);
  const tsModule = join(root, 'blue.ts');
  writeFileSync(tsModule, 'export default (p: string, c: string): number => (c.includes("blue") ? 1 : 0);\n');
  const out = join(root, 'rloo');
  const r = await trainGrpo({
    policyDir: modelDir,
    prompts: promptsFile,
    outDir: out,
    config: { ...tiny, steps: 2, estimator: 'rloo', klInReward: true, rewardWeights: [0.5, 1] },
    rewardModelDir: rmDir,
    rewardModule: tsModule,
    log: quiet,
  });
  assert.equal(r.steps, 2);
  const m = readMetrics(join(out, 'metrics.jsonl'))[1];
  assert.ok(Number.isFinite(Number(m['rewards/model'])) && Number.isFinite(Number(m['rewards/blue'])));
  near(Number(m.reward), 0.5 * Number(m['rewards/model']) + Number(m['rewards/blue']), 'weighted reward');
  // With the KL in the reward there is no KL loss term.
  near(Number(m['train/loss']), Number(m['policy/loss']), 'loss');
  // The transpiled copy of the TypeScript module is gone.
  assert.deepEqual(
    readdirSync(root).filter((f) => f.startsWith('.blue.ts.')),
    [],
  );
});

test('a run stopped after one iteration and resumed repeats the uninterrupted run exactly', async () => {
  const config = { ...tiny, steps: 3, saveEvery: 1 };
  const base = { policyDir: modelDir, prompts: inlinePrompts(['say red', 'say blue', 'say gold']), config, log: quiet };
  const straight = join(root, 'straight');
  await trainGrpo({ ...base, outDir: straight, rewardModule: redModule });
  const resumed = join(root, 'resumed');
  const stop = new AbortController();
  const first = await trainGrpo({
    ...base,
    outDir: resumed,
    rewardModule: redModule,
    signal: stop.signal,
    onStep: () => stop.abort(),
  });
  assert.deepEqual([first.steps, first.aborted], [1, true]);
  assert.equal(existsSync(join(resumed, 'model.safetensors')), false, 'no final model when stopped');
  await assert.rejects(
    trainGrpo({ ...base, outDir: resumed, rewardModule: redModule }),
    /holds checkpoints of an earlier run/,
  );
  await assert.rejects(
    trainGrpo({ ...base, config: { ...config, lr: 0.02 }, outDir: resumed, rewardModule: redModule, resume: true }),
    /--resume: the config differs from .*grpo_config\.json \("lr" \(--lr\): 0\.003 → 0\.02\); .*--force-config/,
  );
  await trainGrpo({ ...base, outDir: resumed, rewardModule: redModule, resume: true });
  assert.deepEqual(metricsWithoutTime(resumed), metricsWithoutTime(straight));
  assert.deepEqual(readFileSync(join(resumed, 'model.safetensors')), readFileSync(join(straight, 'model.safetensors')));
});

test('bad input: a clear error naming the module, prompt, folder or field before any compute, nothing written', async () => {
  const mod = (name: string, body: string) => {
    const path = join(root, name);
    writeFileSync(path, body);
    return path;
  };
  const run = async (extra: Partial<Parameters<typeof trainGrpo>[0]>, want: RegExp) => {
    const outDir = join(root, `bad-${Math.random().toString(36).slice(2)}`);
    await assert.rejects(
      trainGrpo({ policyDir: modelDir, prompts: promptsFile, outDir, config: tiny, log: quiet, ...extra }),
      want,
    );
    assert.equal(existsSync(outDir), false, 'nothing written');
  };
  const throws = mod('throws.mjs', 'export default (p) => { throw new Error("no checker for " + p); };\n');
  await run({ rewardModule: throws }, /throws\.mjs: threw for prompt "say red": no checker for say red/);
  await run(
    { rewardModule: mod('nan.mjs', 'export default () => NaN;\n') },
    /nan\.mjs: returned NaN for prompt "say red"; a reward must be a finite number/,
  );
  await run(
    { rewardModule: mod('text.mjs', 'export default async () => "1";\n') },
    /text\.mjs: returned "1" for prompt/,
  );
  await run(
    { rewardModule: mod('nodefault.mjs', 'export const reward = () => 1;\n') },
    /nodefault\.mjs: a reward module must export a default function .* found no default export/,
  );
  await run({ rewardModule: join(root, 'missing.js') }, /missing\.js: reward module not found/);
  await run(
    { rewardModule: mod('syntax.mjs', 'export default (p => 1;\n') },
    /syntax\.mjs: cannot import the reward module/,
  );
  await run({ rewardModule: redModule, policyDir: join(root, 'no-sft') }, /no-sft: model folder not found/);
  await run({ rewardModelDir: join(root, 'no-rm') }, /no-rm: model folder not found/);
  await run({ rewardModelDir: modelDir }, /not a reward model/);
  await run({}, /no reward: give a reward model folder, a reward module, or both/);
  await run(
    { rewardModule: redModule, config: { ...tiny, groupSize: 1 } },
    /field "groupSize" \(--group-size\) must be an integer >= 2/,
  );
  await run(
    { rewardModule: redModule, config: { ...tiny, rewardWeights: [1, 2] } },
    /"rewardWeights" has 2 weights for 1 reward source/,
  );
  await run(
    { rewardModule: redModule, prompts: writeJsonl(join(root, 'p.jsonl'), ['{"prompt": 3}']) },
    /p\.jsonl:1: "prompt" must be a string/,
  );
  // A verifier that fails only on some completion is caught when it happens, naming the module and the prompt.
  const picky = mod('picky.mjs', 'export default (p, c) => (c === "" ? 0 : Number.NaN);\n');
  await assert.rejects(
    trainGrpo({
      policyDir: modelDir,
      prompts: promptsFile,
      outDir: join(root, 'picky'),
      config: tiny,
      rewardModule: picky,
      log: quiet,
    }),
    /picky\.mjs: returned NaN for prompt "say \w+"/,
  );
  assert.equal(existsSync(join(root, 'picky', 'model.safetensors')), false);
  // The CLI wants a reward.
  assert.equal(await grpoCli(['--policy', modelDir, '--prompts', promptsFile, '--out', join(root, 'x')]), 2);
});

test('without the typescript package (an install without dev dependencies) a .ts module is a clear error, nothing written', () => {
  // A preload that makes `typescript` unresolvable, as in `npm install --omit=dev`.
  const block = join(root, 'no-typescript.cjs');
  writeFileSync(
    block,
    "const M = require('node:module'); const r = M._resolveFilename;\n" +
      "M._resolveFilename = function (req, ...a) { if (req === 'typescript') { const e = new Error('Cannot find module typescript'); e.code = 'MODULE_NOT_FOUND'; throw e; } return r.call(this, req, ...a); };\n",
  );
  const tsModule = join(root, 'green.ts');
  writeFileSync(tsModule, 'export default (p: string, c: string): number => (c.includes("green") ? 1 : 0);\n');
  const out = join(root, 'no-ts');
  const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
  const args = ['--require', block, cli, 'grpo', '--policy', modelDir, '--prompts', promptsFile, '--out', out];
  let stderr = '';
  try {
    execFileSync(process.execPath, [...args, '--reward-module', tsModule, '--steps', '1'], { stdio: 'pipe' });
  } catch (e) {
    stderr = String((e as { stderr: Buffer }).stderr);
  }
  assert.match(
    stderr,
    /green\.ts: a TypeScript reward module is transpiled with the "typescript" package, which is not installed/,
  );
  assert.match(stderr, /pass the module as \.js or \.mjs/);
  assert.equal(existsSync(out), false, 'nothing written');
  assert.deepEqual(
    readdirSync(root).filter((f) => f.startsWith('.green.ts.')),
    [],
  );
});
