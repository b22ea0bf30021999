// LoRA through the trainer commands: sft, rm and ppo train adapters only, checkpoint only what trains, save PEFT
// adapters (and with --merge a full model), and PPO's reference is the policy with its adapters off.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { run as dpoCli } from '../src/cli/commands/dpo.js';
import { run as grpoCli } from '../src/cli/commands/grpo.js';
import { run as ppoCli } from '../src/cli/commands/ppo.js';
import { run as rmCli } from '../src/cli/commands/rm.js';
import { run as sftCli } from '../src/cli/commands/sft.js';
import { ScalarModel } from '../src/models/heads.js';
import { loadPretrained, loadScalarPretrained } from '../src/models/hf.js';
import { loadAdapter } from '../src/models/lora.js';
import { readHeader } from '../src/models/safetensors.js';
import { rewardModelFn, valueOnRewardModel } from '../src/rlhf/reward_fn.js';
import { noGrad, Rng, randn, Tensor, tidy } from '../src/tensor/index.js';
import { readMetrics } from '../src/train/metrics.js';
import { writeTinyTrainingSet } from './helpers/tiny_lm.js';

const root = mkdtempSync(join(tmpdir(), 'ik-lora-trainers-'));
after(() => rmSync(root, { recursive: true, force: true }));
const { base, demos, rankings, prompts } = writeTinyTrainingSet(root);

// Tensor names in a checkpoint group of the newest checkpoint under dir/checkpoints.
function checkpointNames(dir: string, group: string): string[] {
  const steps = readdirSync(join(dir, 'checkpoints')).sort();
  return [...readHeader(join(dir, 'checkpoints', steps[steps.length - 1], `${group}.safetensors`)).entries.keys()];
}

const logits = (model: { forward(ids: Tensor): Tensor }) =>
  noGrad(() => tidy(() => model.forward(Tensor.fromBuffer(new Int32Array([5, 9, 14, 3]), [1, 4])).toArray()));

test('sft --lora-r: adapters only in checkpoints and output (PEFT layout); --merge writes the same model whole', async () => {
  const out = join(root, 'sft');
  const lora = ['--lora-r', '4', '--lora-alpha', '8', '--lora-targets', 'c_attn,c_proj', '--merge'];
  const args = ['--model', base, '--data', demos, '--out', out, '--epochs', '2', '--batch-size', '4', '--lr', '0.01'];
  assert.equal(await sftCli([...args, ...lora]), 0);
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json', 'merged/config.json'])
    assert.ok(existsSync(join(out, f)), f);
  assert.ok(!existsSync(join(out, 'model.safetensors')), 'no full model beside the adapter');
  const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  assert.deepEqual([cfg.peft_type, cfg.task_type, cfg.r, cfg.lora_alpha], ['LORA', 'CAUSAL_LM', 4, 8]);
  assert.deepEqual(cfg.target_modules, ['c_attn', 'c_proj']);
  assert.equal(cfg.base_model_name_or_path, base);
  // 2 layers × (attn.c_attn, attn.c_proj, mlp.c_proj) × (A, B)
  const names = [...readHeader(join(out, 'adapter_model.safetensors')).entries.keys()];
  assert.equal(names.length, 12);
  assert.ok(
    names.every((n) => /^base_model\.model\.transformer\.h\.\d\.(attn|mlp)\.c_(attn|proj)\.lora_[AB]\.weight$/.test(n)),
  );
  assert.ok(checkpointNames(out, 'model').every((n) => n.includes('.lora_')));
  assert.equal(checkpointNames(out, 'model_optim').length, 2 * 12, 'moments for the adapters only');
  // The adapter on its base gives the merged model's logits, which differ from the base's.
  const adapted = loadPretrained(base);
  const before = logits(adapted);
  loadAdapter(adapted, out);
  const merged = logits(loadPretrained(join(out, 'merged')));
  const want = logits(adapted);
  assert.ok(want.every((x, i) => Math.abs(x - merged[i]) < 1e-4));
  assert.ok(
    want.some((x, i) => Math.abs(x - before[i]) > 1e-3),
    'training moved the adapter',
  );
  // Resume refuses a checkpoint of another setup (full model vs adapters) instead of half-loading it.
  await assert.rejects(
    sftCli([...args, '--resume', '--force-config', '--epochs', '3']),
    /the checkpoint's model lacks 28 trainable tensor\(s\) \(wte\.weight, wpe\.weight, h\.0\.ln_1\.weight, …\): it was saved by another setup/,
  );
});

test('dpo --lora-r: adapters only in checkpoints and output; the reference is the base; --merge writes it whole', async () => {
  const out = join(root, 'dpo');
  const args = ['--model', base, '--data', rankings, '--out', out, '--epochs', '2', '--batch-size', '4'];
  const lora = ['--lora-r', '4', '--lora-targets', 'c_attn', '--lr', '0.01', '--merge'];
  assert.equal(await dpoCli([...args, ...lora]), 0);
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json', 'merged/tokenizer.json'])
    assert.ok(existsSync(join(out, f)), f);
  assert.ok(!existsSync(join(out, 'model.safetensors')), 'no full model beside the adapter');
  assert.ok(checkpointNames(out, 'model').every((n) => n.includes('.lora_')));
  // The first step's policy is the reference (adapters start at zero): its implicit rewards are 0.
  const first = readMetrics(join(out, 'metrics.jsonl'))[0];
  assert.equal(first['rewards/chosen'], 0);
  const adapted = loadPretrained(base);
  loadAdapter(adapted, out);
  const merged = logits(loadPretrained(join(out, 'merged')));
  assert.ok(logits(adapted).every((x, i) => Math.abs(x - merged[i]) < 1e-4));
});

test('grpo --lora-r: the reference is the policy with adapters off (KL 0 at the start), adapters only saved', async () => {
  const out = join(root, 'grpo');
  const verifier = join(root, 'length.mjs');
  writeFileSync(verifier, 'export default (prompt, completion) => completion.length;\n');
  const code = await grpoCli([
    ...['--policy', base, '--prompts', prompts, '--out', out, '--reward-module', verifier, '--merge'],
    ...['--steps', '3', '--batch-size', '2', '--group-size', '2', '--mini-batch-size', '4', '--lr', '1e-2'],
    ...['--max-new-tokens', '6', '--beta', '0.04', '--save-every', '1', '--lora-r', '4', '--lora-targets', 'c_attn'],
  ]);
  assert.equal(code, 0);
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json', 'merged/tokenizer.json'])
    assert.ok(existsSync(join(out, f)), f);
  assert.ok(!existsSync(join(out, 'model.safetensors')), 'no full model beside the adapter');
  assert.ok(checkpointNames(out, 'policy').every((n) => n.includes('.lora_')));
  const ms = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(ms[0]['objective/kl'], 0, 'the first rollout samples the reference itself');
  assert.ok(
    ms.slice(1).some((m) => Number(m['objective/kl']) > 0),
    'the adapters move the policy away from it',
  );
});

test('rm --lora-r: the score head trains whole beside the adapters and is saved with them', async () => {
  const out = join(root, 'rm');
  const args = [
    '--model',
    base,
    '--data',
    rankings,
    '--out',
    out,
    '--epochs',
    '1',
    '--batch-size',
    '2',
    '--lr',
    '0.01',
  ];
  assert.equal(await rmCli([...args, '--lora-r', '2', '--merge']), 0);
  const names = [...readHeader(join(out, 'adapter_model.safetensors')).entries.keys()];
  assert.ok(names.includes('base_model.model.score.weight') && names.includes('base_model.model.score.bias'));
  assert.equal(names.filter((n) => n.includes('lora_')).length, 4, 'c_attn of 2 layers, A and B');
  const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.task_type, 'SEQ_CLS');
  assert.deepEqual(cfg.modules_to_save, ['score']);
  assert.ok(checkpointNames(out, 'model').every((n) => n.includes('.lora_') || n.startsWith('score.')));
  const merged = loadScalarPretrained(join(out, 'merged'));
  assert.equal(merged.trunk.config.vocabSize, loadPretrained(base).config.vocabSize);
});

test('ppo --lora-r: reference = the policy with adapters off, small checkpoints, adapters for policy, EMA, value', async () => {
  const rmOut = join(root, 'rm-full');
  assert.equal(
    await rmCli(['--model', base, '--data', rankings, '--out', rmOut, '--epochs', '1', '--batch-size', '2']),
    0,
  );
  const out = join(root, 'ppo');
  writeFileSync(
    join(root, 'ppo.yaml'),
    'batchSize: 2\nminiBatchSize: 1\nppoEpochs: 1\nmaxNewTokens: 4\nsampleEvery: 0\n',
  );
  const args = [
    '--policy',
    base,
    '--reward',
    rmOut,
    '--prompts',
    prompts,
    '--out',
    out,
    '--config',
    join(root, 'ppo.yaml'),
  ];
  assert.equal(await ppoCli([...args, '--steps', '2', '--lora-r', '4', '--lora-alpha', '64']), 0);
  const m = readMetrics(join(out, 'metrics.jsonl'));
  // Adapters start at zero: the first rollout's policy is its reference exactly; after updates it moves away.
  assert.equal(m[0]['objective/kl'], 0);
  assert.notEqual(m[1]['objective/kl'], 0);
  for (const f of ['adapter_model.safetensors', 'ema/adapter_model.safetensors', 'value/adapter_model.safetensors'])
    assert.ok(existsSync(join(out, f)), f);
  assert.ok(!existsSync(join(out, 'model.safetensors')));
  assert.ok(checkpointNames(out, 'policy').every((n) => n.includes('.lora_')));
  assert.ok(checkpointNames(out, 'ema').every((n) => n.includes('.lora_')));
  assert.ok(checkpointNames(out, 'value').every((n) => n.includes('.lora_') || n.startsWith('score.')));
  // Resumed for a third step from the adapter-only checkpoint.
  assert.equal(await ppoCli([...args, '--steps', '3', '--lora-r', '4', '--lora-alpha', '64', '--resume']), 0);
  assert.deepEqual(
    readMetrics(join(out, 'metrics.jsonl')).map((r) => r.step),
    [1, 2, 3],
  );
});

test('bad LoRA flags are refused before anything is written', async () => {
  const out = join(root, 'bad');
  const args = ['--model', base, '--data', demos, '--out', out];
  await assert.rejects(sftCli([...args, '--lora-r=-3']), /"loraR" \(--lora-r\) must be/);
  await assert.rejects(
    sftCli([...args, '--lora-r', '4', '--lora-targets', 'q_proj']),
    /target \["q_proj"\] matches no Linear\/Conv1D module; the model has c_attn, c_proj, c_fc/,
  );
  await assert.rejects(sftCli([...args, '--merge']), /field "merge" \(--merge\) needs LoRA \(--lora-r\)/);
  assert.ok(!existsSync(out));
});

test('valueOnRewardModel: one trunk for both; the reward is read with the value adapters off', () => {
  const rm = new ScalarModel(loadPretrained(base), new Rng(4));
  rm.score.weight.f32.set(randn(rm.score.weight.shape, new Rng(5), 0.5).f32);
  const score = rewardModelFn(rm, 0);
  const tokens = { prompts: [[5, 9, 14]], responses: [[3, 7]] };
  const before = score([''], [''], tokens);
  const { value, reward } = valueOnRewardModel(rm, 0, { r: 2, alpha: 4, dropout: 0, targets: null }, 1);
  assert.equal(value.trunk, rm.trunk);
  assert.deepEqual(
    value.namedTrainableParameters().map(([n]) => n),
    [
      'h.0.attn.c_attn.lora_A.weight',
      'h.0.attn.c_attn.lora_B.weight',
      'h.1.attn.c_attn.lora_A.weight',
      'h.1.attn.c_attn.lora_B.weight',
      'score.weight',
      'score.bias',
    ],
  );
  for (const [, t] of value.namedTrainableParameters()) t.f32.set(randn(t.shape, new Rng(t.numel), 0.3).f32);
  assert.deepEqual(reward([''], [''], tokens), before, 'the reward model is unchanged');
  const ids = Tensor.fromBuffer(new Int32Array([5, 9, 14, 3, 7]), [1, 5]);
  const v = noGrad(() => tidy(() => value.scoreAt(ids, [4]).toArray()));
  assert.ok(Math.abs(v[0] - before[0]) > 1e-3, 'the value model has its own adapters and head');
});
