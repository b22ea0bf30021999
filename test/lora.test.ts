import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ScalarModel } from '../src/models/heads.js';
import { loadPretrained, savePretrained } from '../src/models/hf.js';
import {
  applyLora,
  hasLora,
  type LoraConfig,
  loadAdapter,
  matchesTarget,
  mergeAndUnload,
  parseLoraTargets,
  saveAdapter,
  withAdaptersDisabled,
} from '../src/models/lora.js';
import { readHeader, readSafetensors } from '../src/models/safetensors.js';
import { AdamW } from '../src/nn/index.js';
import { backward, crossEntropy, mul, noGrad, Rng, randn, reshape, sum, Tensor, tidy } from '../src/tensor/index.js';

const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function logitsOf(model: { forward(ids: Tensor): Tensor }, ids: Tensor): Float32Array {
  return noGrad(() => tidy(() => Float32Array.from(model.forward(ids).toArray())));
}

for (const name of ['gpt2-tiny', 'llama-tiny']) {
  test(`${name}: a PEFT-layout adapter written by PyTorch loads with the reference logits; off = the base`, () => {
    const model = loadPretrained(join(fixtures, name));
    const adapterDir = join(fixtures, 'lora', name);
    const ref = readSafetensors(join(adapterDir, 'reference.safetensors'));
    const ids = ref.get('input_ids')!;
    loadAdapter(model, adapterDir);
    assert.ok(hasLora(model));
    const want = ref.get('logits')!.f32;
    const got = logitsOf(model, ids);
    assert.ok(maxAbsDiff(got, want) < 1e-4, `adapted logits differ by ${maxAbsDiff(got, want)}`);
    const base = withAdaptersDisabled(model, () => logitsOf(model, ids));
    assert.ok(maxAbsDiff(base, ref.get('base_logits')!.f32) < 1e-4);
    assert.ok(maxAbsDiff(base, want) > 0.1, 'the adapter changes the logits');
    assert.ok(maxAbsDiff(logitsOf(model, ids), want) < 1e-4, 'adapters are back on after withAdaptersDisabled');

    // Saved again: PEFT's names, shapes and config, byte-for-byte the same tensors as the PyTorch file.
    const dir = mkdtempSync(join(tmpdir(), 'ik-lora-'));
    saveAdapter(model, join(dir, 'adapter'), join(fixtures, name));
    const theirs = readHeader(join(adapterDir, 'adapter_model.safetensors')).entries;
    const ours = readHeader(join(dir, 'adapter', 'adapter_model.safetensors')).entries;
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
    for (const [k, e] of ours) assert.deepEqual(e.shape, theirs.get(k)!.shape, k);
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter', 'adapter_config.json'), 'utf8'));
    const theirCfg = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'));
    for (const k of ['peft_type', 'task_type', 'r', 'lora_alpha', 'target_modules', 'fan_in_fan_out'])
      assert.deepEqual(cfg[k], theirCfg[k], k);

    // Merged into the base and saved as a plain model folder: the same logits, no adapter tensors.
    mergeAndUnload(model);
    assert.ok(!hasLora(model));
    assert.ok(model.namedParameters().every(([n]) => !n.includes('lora_')));
    assert.ok(maxAbsDiff(logitsOf(model, ids), want) < 1e-4);
    savePretrained(model, join(dir, 'merged'));
    assert.ok(maxAbsDiff(logitsOf(loadPretrained(join(dir, 'merged')), ids), want) < 1e-4);
    rmSync(dir, { recursive: true });
  });
}

const cfg = (over: Partial<LoraConfig> = {}): LoraConfig => ({ r: 4, alpha: 8, dropout: 0, targets: null, ...over });

test('only adapters train: the base is frozen (no gradients, not in the optimizer) and starts unchanged', () => {
  const model = loadPretrained(join(fixtures, 'gpt2-tiny'));
  const ids = Tensor.fromBuffer(new Int32Array([1, 2, 3, 4, 5, 6, 7, 8]), [2, 4]);
  const before = logitsOf(model, ids);
  const baseWeights = new Map(model.namedParameters().map(([n, t]) => [n, Float32Array.from(t.f32)]));
  applyLora(model, cfg(), { seed: 3 });
  assert.deepEqual(logitsOf(model, ids), before, 'B starts at zero');
  const trainable = model.namedTrainableParameters().map(([n]) => n);
  assert.deepEqual(trainable, [
    'h.0.attn.c_attn.lora_A.weight',
    'h.0.attn.c_attn.lora_B.weight',
    'h.1.attn.c_attn.lora_A.weight',
    'h.1.attn.c_attn.lora_B.weight',
  ]);
  const opt = new AdamW(model.trainableParameters(), { lr: 0.05 });
  model.train();
  for (let step = 0; step < 3; step++) {
    tidy(() => {
      const logits = model.forward(ids);
      backward(crossEntropy(reshape(logits, [8, logits.size(-1)]), reshape(ids, [8])));
    });
    for (const [n, t] of model.namedParameters())
      if (!n.includes('lora_')) assert.equal(t.grad, null, `${n} got a gradient`);
    opt.step();
    opt.zeroGrad();
  }
  model.eval();
  assert.equal(opt.stateDict().tensors.size, 2 * trainable.length, 'moments for the adapters only');
  for (const [n, t] of model.namedParameters())
    if (!n.includes('lora_')) assert.deepEqual(t.f32, baseWeights.get(n), `${n} changed`);
  assert.ok(maxAbsDiff(logitsOf(model, ids), before) > 1e-3, 'the adapters learned something');
  opt.dispose();
});

test('adapter gradients match finite differences (Llama, A and B of every target)', () => {
  const model = loadPretrained(join(fixtures, 'llama-tiny'));
  applyLora(model, cfg({ r: 2, targets: ['q_proj', 'down_proj'] }), { seed: 5 });
  // B is zero at init; give it values so that A's gradient is not zero too.
  for (const [n, t] of model.namedTrainableParameters())
    if (n.endsWith('lora_B.weight')) t.f32.set(randn(t.shape, new Rng(9), 0.3).f32);
  const ids = Tensor.fromBuffer(new Int32Array([3, 9, 27, 17, 51, 1]), [1, 6]);
  const w = randn([1, 6, 64], new Rng(2));
  const f = () => tidy(() => sum(mul(model.forward(ids), w)).item());
  tidy(() => backward(sum(mul(model.forward(ids), w))));
  for (const [n, t] of model.namedTrainableParameters())
    for (const i of [0, t.numel - 1]) {
      const x = t.f32[i];
      const h = 1e-2;
      t.f32[i] = x + h;
      const up = f();
      t.f32[i] = x - h;
      const down = f();
      t.f32[i] = x;
      const fd = (up - down) / (2 * h);
      const g = t.grad!.f32[i];
      assert.ok(Math.abs(fd - g) <= 2e-3 * Math.max(1, Math.abs(fd)), `${n}[${i}]: grad ${g}, finite difference ${fd}`);
    }
});

test('a reward model with LoRA trains and saves its score head (modules_to_save) beside the adapters', () => {
  const rm = new ScalarModel(loadPretrained(join(fixtures, 'gpt2-tiny')), new Rng(1));
  applyLora(rm, cfg({ targets: 'h\\.\\d+\\.attn\\.c_attn' }), { seed: 1 });
  const trainable = rm.namedTrainableParameters().map(([n]) => n);
  assert.ok(trainable.includes('score.weight') && trainable.includes('score.bias'));
  assert.equal(trainable.filter((n) => n.includes('lora_')).length, 4);
  for (const [n, t] of rm.namedTrainableParameters()) t.f32.set(randn(t.shape, new Rng(n.length), 0.2).f32);
  const ids = Tensor.fromBuffer(new Int32Array([1, 2, 3, 4]), [1, 4]);
  const want = noGrad(() => tidy(() => rm.scoreAt(ids, [3]).toArray()));
  const dir = mkdtempSync(join(tmpdir(), 'ik-lora-rm-'));
  saveAdapter(rm, dir, 'base');
  const names = [...readHeader(join(dir, 'adapter_model.safetensors')).entries.keys()];
  assert.ok(names.includes('base_model.model.score.weight'));
  assert.ok(names.includes('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight'));
  const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  assert.equal(config.task_type, 'SEQ_CLS');
  assert.deepEqual(config.modules_to_save, ['score']);
  const again = new ScalarModel(loadPretrained(join(fixtures, 'gpt2-tiny')), new Rng(7));
  loadAdapter(again, dir);
  assert.deepEqual(
    noGrad(() => tidy(() => again.scoreAt(ids, [3]).toArray())),
    want,
  );
  rmSync(dir, { recursive: true });
});

test('target patterns: PEFT list suffixes, whole-path regexes, and the CLI text', () => {
  assert.ok(matchesTarget('h.0.attn.c_proj', ['c_proj']));
  assert.ok(matchesTarget('h.0.attn.c_proj', ['attn.c_proj']));
  assert.ok(!matchesTarget('h.0.attn.c_proj', ['proj']));
  assert.ok(matchesTarget('model.layers.3.self_attn.q_proj', '.*\\.(q|v)_proj'));
  assert.ok(!matchesTarget('model.layers.3.self_attn.q_proj', 'q_proj'), 'a regex must match the whole path');
  assert.deepEqual(parseLoraTargets('q_proj,v_proj'), ['q_proj', 'v_proj']);
  assert.deepEqual(parseLoraTargets('q_proj|v_proj'), ['q_proj', 'v_proj']);
  assert.equal(parseLoraTargets('.*\\.(q|v)_proj'), '.*\\.(q|v)_proj');
});

test('bad input is refused before anything changes: unknown targets, r <= 0, an adapter for another base', () => {
  const model = loadPretrained(join(fixtures, 'llama-tiny'));
  const ids = Tensor.fromBuffer(new Int32Array([1, 2, 3]), [1, 3]);
  const before = logitsOf(model, ids);
  assert.throws(
    () => applyLora(model, cfg({ targets: ['c_attn'] })),
    /target \["c_attn"\] matches no Linear\/Conv1D module; the model has q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head/,
  );
  assert.throws(() => applyLora(model, cfg({ r: 0 })), /LoRA rank r must be an integer > 0, got 0/);
  assert.throws(() => applyLora(model, cfg({ r: -2 })), /got -2/);
  assert.throws(() => applyLora(model, cfg({ targets: 'self_attn\\.(' })), /not a valid regex/);
  // The GPT-2 adapter on a Llama base: names that do not exist here.
  assert.throws(
    () => loadAdapter(model, join(fixtures, 'lora', 'gpt2-tiny')),
    /does not fit this model, nothing was loaded:[\s\S]*tensor "base_model\.model\.transformer\.h\.0\.attn\.c_attn\.lora_A\.weight"/,
  );
  // The right names with the wrong rank in the config: shapes that do not fit, each tensor named.
  const dir = mkdtempSync(join(tmpdir(), 'ik-lora-bad-'));
  cpSync(join(fixtures, 'lora', 'llama-tiny'), dir, { recursive: true });
  const c = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...c, r: 3 }));
  assert.throws(
    () => loadAdapter(model, dir),
    /tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" has shape \[2,32\], the model needs \[3,32\]/,
  );
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...c, r: 0 }));
  assert.throws(() => loadAdapter(model, dir), /adapter_config\.json: LoRA rank r must be an integer > 0/);
  assert.ok(!hasLora(model) && model.namedParameters().every(([, t]) => t.requiresGrad));
  assert.deepEqual(logitsOf(model, ids), before);
  // Nothing is written for a model without adapters.
  assert.throws(() => saveAdapter(model, join(dir, 'out'), null), /no LoRA adapters/);
  assert.ok(!existsSync(join(dir, 'out')));
  rmSync(dir, { recursive: true });
});
