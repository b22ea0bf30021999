// Checkpoints we save are read back by the PyTorch reference scripts (test/fixtures/make_*_fixture.py --check)
// with the same logits. Needs Debian's python3-torch; without it the test says so and skips.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadPretrained, savePretrained } from '../src/models/hf.js';
import { writeSafetensors } from '../src/models/safetensors.js';
import { AdamW } from '../src/nn/index.js';
import { backward, crossEntropy, noGrad, reshape, Tensor, tidy } from '../src/tensor/index.js';

const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
const skip = torch.status === 0 ? false : 'python3-torch is not installed (apt-get install python3-torch)';

for (const [name, script] of [
  ['gpt2-tiny', 'make_gpt2_fixture.py'],
  ['llama-tiny', 'make_llama_fixture.py'],
  ['qwen2-tiny', 'make_llama_fixture.py'],
])
  test(`${name}: a checkpoint we train and save is read by the PyTorch script with the same logits`, { skip }, () => {
    const model = loadPretrained(join(fixtures, name));
    // One optimizer step, so the saved weights are ours rather than the fixture's.
    const ids = Tensor.fromBuffer(new Int32Array([3, 1, 4, 1, 5, 9, 2, 6]), [2, 4]);
    tidy(() => {
      const logits = model.forward(ids);
      backward(crossEntropy(reshape(logits, [-1, logits.size(-1)]), reshape(ids, [-1])));
    });
    new AdamW(model.parameters(), { lr: 1e-2 }).step();
    const dir = mkdtempSync(join(tmpdir(), `ik-${name}-`));
    savePretrained(model, dir);
    const logits = noGrad(() => model.forward(ids));
    writeSafetensors(join(dir, 'probe.safetensors'), { input_ids: ids, logits });
    const r = spawnSync('/usr/bin/python3', [join(fixtures, script), '--check', dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    rmSync(dir, { recursive: true });
  });
