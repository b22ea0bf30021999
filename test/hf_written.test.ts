// Checkpoints written by Hugging Face transformers 5.17 itself (save_pretrained: sharded, bf16, tied and untied heads,
// grouped-query attention, transformers-5 "rope_parameters", a sequence-classification reward model), with the
// logits transformers computed. Regenerate with scripts/interop/check_transformers.py where transformers is installed.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadPretrained, loadScalarPretrained, savePretrained } from '../src/models/hf.js';
import { noGrad, Tensor, tidy } from '../src/tensor/index.js';

const root = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'hf-written');

interface Reference {
  ids: number[];
  output: number[];
}
const reference = (name: string): Reference => JSON.parse(readFileSync(join(root, name, 'reference.json'), 'utf8'));

function assertClose(got: number[], want: number[], what: string): void {
  assert.equal(got.length, want.length, `${what}: ${got.length} values, expected ${want.length}`);
  const scale = Math.max(...want.map(Math.abs));
  const err = Math.max(...got.map((v, i) => Math.abs(v - want[i]))) / scale;
  assert.ok(err < 1e-4, `${what}: max relative error ${err}`);
}

for (const name of ['gpt2', 'llama-gqa-sharded', 'qwen2-tied-bf16', 'llama3-rope-scaling', 'llama-linear-rope']) {
  test(`a transformers-written ${name} checkpoint gives transformers' logits`, () => {
    const ref = reference(name);
    const logits = noGrad(() =>
      tidy(() =>
        loadPretrained(join(root, name))
          .forward(Tensor.fromBuffer(new Int32Array(ref.ids), [1, ref.ids.length]))
          .toArray(),
      ),
    );
    assertClose(logits, ref.output, name);
  });
}

test('a transformers-written reward model (score head without bias) gives transformers score', () => {
  const ref = reference('llama-rm');
  const rm = loadScalarPretrained(join(root, 'llama-rm'));
  const ids = Tensor.fromBuffer(new Int32Array(ref.ids), [1, ref.ids.length]);
  const score = noGrad(() => tidy(() => rm.scoreAt(ids, [ref.ids.length - 1]).toArray()));
  assertClose(score, ref.output, 'llama-rm');
});

test('rope_parameters set the RoPE base, and other RoPE types are refused naming the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-rope-'));
  cpSync(join(root, 'llama-gqa-sharded'), dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const model = loadPretrained(dir);
  assert.ok('ropeTheta' in model.config && model.config.ropeTheta === 500000);
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ ...config, rope_parameters: { rope_type: 'yarn', rope_theta: 5e5, factor: 4 } }),
  );
  assert.throws(() => loadPretrained(dir), /config\.json: field "rope_parameters" asks for RoPE type "yarn"/);
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ ...config, rope_parameters: { rope_type: 'llama3', rope_theta: 5e5, factor: 8 } }),
  );
  assert.throws(() => loadPretrained(dir), /config\.json: field "rope_parameters\.low_freq_factor" must be a positive/);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, mlp_bias: true }));
  assert.throws(() => loadPretrained(dir), /config\.json: field "mlp_bias"/);
  rmSync(dir, { recursive: true });
});

test('special-token ids in config.json survive a load and save, and bad ones are refused naming the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-ids-'));
  savePretrained(loadPretrained(join(root, 'llama-gqa-sharded')), dir);
  const saved = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.deepEqual([saved.bos_token_id, saved.eos_token_id, saved.pad_token_id], [1, 2, null]);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...saved, eos_token_id: [2, 7] }));
  savePretrained(loadPretrained(dir), dir);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).eos_token_id, [2, 7]);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...saved, eos_token_id: 'two' }));
  assert.throws(() => loadPretrained(dir), /config\.json: field "eos_token_id" must be a token id/);
  rmSync(dir, { recursive: true });
});

test('a Llama 3 RoPE scaling survives our save: same logits after a round trip', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-llama3-'));
  const ref = reference('llama3-rope-scaling');
  savePretrained(loadPretrained(join(root, 'llama3-rope-scaling')), dir);
  const saved = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(saved.rope_scaling.rope_type, 'llama3');
  const ids = Tensor.fromBuffer(new Int32Array(ref.ids), [1, ref.ids.length]);
  assertClose(
    noGrad(() => tidy(() => loadPretrained(dir).forward(ids).toArray())),
    ref.output,
    'round trip',
  );
  rmSync(dir, { recursive: true });
});
