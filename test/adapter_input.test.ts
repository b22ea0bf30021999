// A LoRA run's adapter folder as the model input of the next stage (rm, dpo, grpo, ppo, sample, export): its base
// (adapter_config.json's base_model_name_or_path, or --base) with the adapter merged in — the same model as the run's
// --merge output; chains of adapter folders resolve; a missing or unfitting base is an error before anything is
// written.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import { run as dpoCli } from '../src/cli/commands/dpo.js';
import { run as grpoCli } from '../src/cli/commands/grpo.js';
import { run as ppoCli } from '../src/cli/commands/ppo.js';
import { run as rmCli } from '../src/cli/commands/rm.js';
import { run as sftCli } from '../src/cli/commands/sft.js';
import { folderKind, loadModelFolder, loadPretrained, loadScalarFolder } from '../src/models/index.js';
import { noGrad, Tensor, tidy } from '../src/tensor/index.js';
import { writeTinyModel, writeTinyTrainingSet } from './helpers/tiny_lm.js';

const root = mkdtempSync(join(tmpdir(), 'ik-adapter-input-'));
after(() => rmSync(root, { recursive: true, force: true }));
const { base, demos, rankings, prompts } = writeTinyTrainingSet(root);
const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const lora = ['--lora-r', '4', '--lora-alpha', '8', '--lora-targets', 'c_attn,c_proj', '--lr', '0.01'];
const ids = () => Tensor.fromBuffer(new Int32Array([5, 9, 14, 3]), [1, 4]);
const logits = (model: { forward(x: Tensor): Tensor }) => noGrad(() => tidy(() => model.forward(ids()).toArray()));
const near = (a: number[], b: number[], tol: number, what: string) =>
  assert.ok(
    a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= tol),
    `${what}: max diff ${Math.max(...a.map((x, i) => Math.abs(x - b[i])))}`,
  );

// An SFT LoRA run: its adapter folder, and with --merge the same model whole in merged/.
const sft = join(root, 'sft');
const sftReady = sftCli([
  '--model',
  base,
  '--data',
  demos,
  '--out',
  sft,
  '--epochs',
  '1',
  '--batch-size',
  '4',
  '--merge',
  ...lora,
]);

test('an adapter folder loads as its base with the adapter merged: the --merge output, through sample and export too', async () => {
  assert.equal(await sftReady, 0);
  assert.equal(folderKind(sft), 'causal');
  const merged = logits(loadPretrained(join(sft, 'merged')));
  near(logits(loadModelFolder(sft)), merged, 1e-5, 'adapter vs merged');
  assert.ok(
    logits(loadPretrained(base)).some((x, i) => Math.abs(x - merged[i]) > 1e-3),
    'the adapter changed the model',
  );
  const sample = (model: string) =>
    execFileSync(
      process.execPath,
      [cli, 'sample', '--model', model, '--temperature', '0', '--max-tokens', '6', 'say red'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  assert.equal(sample(sft), sample(join(sft, 'merged')));
  const exported = join(root, 'exported');
  execFileSync(process.execPath, [cli, 'export', '--format', 'safetensors', sft, exported], { stdio: 'pipe' });
  near(logits(loadPretrained(exported)), merged, 1e-5, 'export of the adapter folder');
});

test('rm, dpo, grpo and ppo start from an adapter folder; a LoRA stage on it chains (its base is that adapter)', async () => {
  assert.equal(await sftReady, 0);
  const rm = join(root, 'rm');
  assert.equal(await rmCli(['--model', sft, '--data', rankings, '--out', rm, '--batch-size', '4', ...lora]), 0);
  const rmConfig = JSON.parse(readFileSync(join(rm, 'adapter_config.json'), 'utf8'));
  assert.equal(rmConfig.base_model_name_or_path, sft);
  assert.equal(folderKind(rm), 'scalar');
  // The reward model reads as the merged SFT model with the RM adapter and score head merged in.
  const scorer = loadScalarFolder(rm);
  const score = noGrad(() => tidy(() => scorer.scoreAt(ids(), [3]).toArray()));
  assert.ok(Number.isFinite(score[0]));
  const dpo = join(root, 'dpo');
  assert.equal(await dpoCli(['--model', sft, '--data', rankings, '--out', dpo, '--batch-size', '4']), 0);
  assert.ok(existsSync(join(dpo, 'model.safetensors')));
  const grpo = join(root, 'grpo');
  const rollout = ['--steps', '1', '--batch-size', '2', '--group-size', '2', '--mini-batch-size', '4'];
  const args = ['--prompts', prompts, '--max-new-tokens', '4', ...rollout];
  assert.equal(await grpoCli(['--policy', sft, '--reward-model', rm, '--out', grpo, ...args]), 0);
  assert.ok(existsSync(join(grpo, 'model.safetensors')));
  const ppo = join(root, 'ppo');
  const ppoArgs = [
    '--prompts',
    prompts,
    '--steps',
    '1',
    '--batch-size',
    '2',
    '--mini-batch-size',
    '2',
    '--max-new-tokens',
    '4',
  ];
  assert.equal(await ppoCli(['--policy', sft, '--reward', rm, '--out', ppo, ...ppoArgs]), 0);
  assert.ok(existsSync(join(ppo, 'model.safetensors')) && existsSync(join(ppo, 'value', 'model.safetensors')));
});

test('an adapter whose base is missing or does not fit: an error naming the field or tensors, nothing written', async () => {
  assert.equal(await sftReady, 0);
  const orphan = join(root, 'orphan');
  cpSync(sft, orphan, { recursive: true, filter: (src) => !src.includes('merged') && !src.includes('checkpoints') });
  const cfgPath = join(orphan, 'adapter_config.json');
  writeFileSync(
    cfgPath,
    JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, 'utf8')), base_model_name_or_path: 'gpt2-somewhere' }),
  );
  const missing =
    /adapter_config\.json: field "base_model_name_or_path" is "gpt2-somewhere", which is not a local model folder.*--base/;
  const out = join(root, 'bad-out');
  await assert.rejects(dpoCli(['--model', orphan, '--data', rankings, '--out', out]), missing);
  await assert.rejects(rmCli(['--model', orphan, '--data', rankings, '--out', out]), missing);
  await assert.rejects(
    grpoCli(['--policy', orphan, '--prompts', prompts, '--out', out, '--reward-model', join(root, 'rm')]),
    missing,
  );
  assert.equal(existsSync(out), false, 'nothing written');
  // --base names the base: the right one works, one of another shape is refused naming the tensors.
  near(logits(loadModelFolder(orphan, { base })), logits(loadPretrained(join(sft, 'merged'))), 1e-5, '--base');
  // A base recorded relative to a folder above the adapter (a training worker runs in the shared models folder and
  // records it so) is found there, from any working folder.
  const nested = join(root, 'job-9', 'model');
  cpSync(orphan, nested, { recursive: true });
  writeFileSync(
    join(nested, 'adapter_config.json'),
    JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, 'utf8')), base_model_name_or_path: relative(root, base) }),
  );
  near(logits(loadModelFolder(nested)), logits(loadPretrained(join(sft, 'merged'))), 1e-5, 'a base above the adapter');
  const other = writeTinyModel(join(root, 'other'), { nEmbd: 48 });
  await assert.rejects(
    dpoCli(['--model', orphan, '--base', other, '--data', rankings, '--out', out]),
    /orphan: the adapter does not fit this model, nothing was loaded:[\s\S]*has shape \[4,32\], the model needs \[4,48\][\s\S]*base model: .*other; give the right one with --base/,
  );
  await assert.rejects(
    dpoCli(['--model', base, '--base', other, '--data', rankings, '--out', out]),
    /--base .*other: .*base is a full model folder, not an adapter folder/,
  );
  assert.equal(existsSync(out), false, 'nothing written');
});
