// Hugging Face checkpoint folders: sharded loading, bf16/f16 tensors, and bad files refused with the file and
// the field named.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hfParamName, loadPretrained, savePretrained } from '../src/models/hf.js';
import { readSafetensors, writeSafetensors } from '../src/models/safetensors.js';
import { cast, noGrad, Tensor, tidy } from '../src/tensor/index.js';

const fixture = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'gpt2-tiny');
const ids = () => Tensor.fromBuffer(new Int32Array([1, 5, 9, 2]), [1, 4]);
const logitsOf = (dir: string) => noGrad(() => tidy(() => loadPretrained(dir).forward(ids()).toArray()));

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ik-ckpt-'));
  cpSync(fixture, dir, { recursive: true });
  rmSync(join(dir, 'reference.safetensors'));
  return dir;
}

// A raw safetensors file from a header object and a data length.
function rawFile(path: string, header: object, dataBytes: number): void {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
}

test('a sharded checkpoint with an index loads like the single file', () => {
  const dir = scratch();
  const all = readSafetensors(join(dir, 'model.safetensors'));
  const names = [...all.keys()];
  const half = Math.ceil(names.length / 2);
  const shards = [names.slice(0, half), names.slice(half)];
  const weightMap: Record<string, string> = {};
  shards.forEach((part, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeSafetensors(join(dir, file), new Map(part.map((n) => [n, all.get(n)!])));
    for (const n of part) weightMap[n] = file;
  });
  const want = logitsOf(dir);
  rmSync(join(dir, 'model.safetensors'));
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  assert.deepEqual(logitsOf(dir), want);
  rmSync(dir, { recursive: true });
});

test('bf16 weights are read and widened to f32', () => {
  const dir = scratch();
  const all = readSafetensors(join(dir, 'model.safetensors'));
  const low = new Map([...all].map(([n, t]) => [n, cast(t, 'bf16')]));
  writeSafetensors(join(dir, 'model.safetensors'), low);
  const back = readSafetensors(join(dir, 'model.safetensors'));
  const [name, t] = [...all][0];
  back.get(name)!.f32.forEach((v, i) => {
    assert.ok(Math.abs(v - t.f32[i]) <= Math.abs(t.f32[i]) / 128 + 1e-30);
  });
  assert.equal(logitsOf(dir).length, 4 * 64);
  rmSync(dir, { recursive: true });
});

test('corrupt safetensors files are refused, naming the file and what is wrong', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-st-'));
  const f = join(dir, 'bad.safetensors');
  const cases: [object | null, number, RegExp][] = [
    [{ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8, /bad\.safetensors.*beyond the data.*truncated/],
    [
      { a: { dtype: 'F32', shape: [4], data_offsets: [0, 12] } },
      16,
      /tensor "a" spans 12 bytes but shape \[4\] of F32 needs 16/,
    ],
    [{ a: { dtype: 'Q4', shape: [4], data_offsets: [0, 16] } }, 16, /tensor "a" has unsupported dtype "Q4"/],
    [
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      },
      12,
      /tensors "a" and "b" overlap/,
    ],
    [{ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4, /tensor "a" has an invalid shape/],
  ];
  for (const [header, bytes, message] of cases) {
    rawFile(f, header!, bytes);
    assert.throws(() => readSafetensors(f), message);
  }
  writeFileSync(f, Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 123]));
  assert.throws(() => readSafetensors(f), /bad\.safetensors: not a valid safetensors file: header length 200 exceeds/);
  writeFileSync(f, Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{no}')]));
  assert.throws(() => readSafetensors(f), /header is not JSON/);
  rmSync(dir, { recursive: true });
});

test('a model folder that does not match its config is refused whole, naming file and tensor', () => {
  const dir = scratch();
  const st = join(dir, 'model.safetensors');
  const all = readSafetensors(st);
  const broken = new Map(all);
  broken.delete('ln_f.bias');
  broken.set('h.0.mlp.c_fc.weight', Tensor.empty([3, 3]));
  broken.set('h.9.extra', Tensor.empty([1]));
  writeSafetensors(st, broken);
  assert.throws(
    () => loadPretrained(dir),
    (e: Error) =>
      /tensor "h\.0\.mlp\.c_fc\.weight" has shape \[3,3\], the config needs \[32,128\]/.test(e.message) &&
      /unexpected tensor "h\.9\.extra"/.test(e.message) &&
      /missing tensor "ln_f\.bias"/.test(e.message),
  );
  writeSafetensors(st, all);
  truncateSync(st, readFileSync(st).length - 100);
  assert.throws(() => loadPretrained(dir), /model\.safetensors: not a valid safetensors file: .*truncated/);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'bert' }));
  assert.throws(() => loadPretrained(dir), /config\.json: field "model_type" "bert" is not supported/);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, n_head: 'four' }));
  assert.throws(() => loadPretrained(dir), /config\.json: field "n_head" must be a number/);
  rmSync(dir, { recursive: true });
});

test('a model saved in shards writes an index that transformers reads, and loads back exactly', () => {
  const dir = scratch();
  const model = loadPretrained(dir);
  const want = logitsOf(dir);
  savePretrained(model, dir, { maxShardBytes: 20_000 });
  const files = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  assert.ok(files.length > 2, `expected several shards, got ${files}`);
  assert.ok(
    files.every((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)),
    `shard names: ${files}`,
  );
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
  const params = [...model.namedParameters()];
  assert.deepEqual(Object.keys(index.weight_map).sort(), params.map(([n]) => hfParamName(model, n)).sort());
  assert.equal(
    index.metadata.total_size,
    params.reduce((s, [, t]) => s + t.numel * 4, 0),
  );
  for (const f of files) {
    const sizes = [...readSafetensors(join(dir, f)).values()].map((t) => t.numel * 4);
    assert.ok(sizes.length === 1 || sizes.reduce((a, b) => a + b) <= 20_000, `${f} is over the shard limit`);
  }
  assert.deepEqual(logitsOf(dir), want);
  // Saving again as one file removes the shards and the index: the folder never mixes two saves.
  savePretrained(model, dir);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('model')),
    ['model.safetensors'],
  );
  assert.deepEqual(logitsOf(dir), want);
  rmSync(dir, { recursive: true });
});

test('a bf16 save halves the file, says bfloat16 in config.json and keeps the logits close', () => {
  const dir = scratch();
  const model = loadPretrained(dir);
  const want = logitsOf(dir);
  const f32Bytes = statSync(join(dir, 'model.safetensors')).size;
  savePretrained(model, dir, { dtype: 'bf16' });
  assert.ok(statSync(join(dir, 'model.safetensors')).size < 0.52 * f32Bytes);
  assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
  const stored = readSafetensors(join(dir, 'model.safetensors'), { keepBf16: true });
  assert.ok([...stored.values()].every((t) => t.dtype === 'bf16'));
  const got = logitsOf(dir);
  const scale = Math.max(...want.map(Math.abs));
  for (const [i, v] of got.entries()) assert.ok(Math.abs(v - want[i]) < 0.05 * scale, `logit ${i}: ${v} vs ${want[i]}`);
  assert.throws(() => savePretrained(model, dir, { maxShardBytes: 0 }), /maxShardBytes must be positive/);
  rmSync(dir, { recursive: true });
});

test('a folder with only pytorch_model.bin says how to get safetensors', () => {
  const dir = scratch();
  rmSync(join(dir, 'model.safetensors'));
  writeFileSync(join(dir, 'pytorch_model.bin'), 'PK');
  assert.throws(() => loadPretrained(dir), /only pytorch_model\.bin \(PyTorch pickle\).*safe_serialization=True/);
  rmSync(dir, { recursive: true });
});

// transformers' GPT2LMHeadModel.save_pretrained writes the trunk under `transformer.` and leaves a tied lm_head out
// (test/fixtures/hf-written/gpt2 is such a file); an untied head is `lm_head.weight`.
test("a GPT-2 LM is saved under GPT2LMHeadModel's names (transformer. prefix, tied head left out); both layouts load", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-lm-names-'));
  const tied = loadPretrained(fixture);
  assert.equal(tied.lm_head, null);
  savePretrained(tied, join(dir, 'tied'));
  const names = [...readSafetensors(join(dir, 'tied', 'model.safetensors')).keys()];
  assert.ok(names.includes('transformer.wte.weight') && names.includes('transformer.h.0.attn.c_attn.weight'));
  assert.ok(
    names.every((n) => n.startsWith('transformer.')),
    names.join(),
  );
  assert.ok(!names.includes('lm_head.weight'));
  const hfNames = new Set(
    readSafetensors(
      join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'hf-written', 'gpt2', 'model.safetensors'),
    ).keys(),
  );
  for (const n of hfNames) assert.ok(n.startsWith('transformer.') && !n.startsWith('lm_head'), n);
  assert.deepEqual(logitsOf(join(dir, 'tied')), logitsOf(fixture));
  // An untied head keeps its own name beside the prefixed trunk.
  const untied = join(dir, 'untied');
  cpSync(fixture, untied, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(untied, 'config.json'), 'utf8'));
  writeFileSync(join(untied, 'config.json'), JSON.stringify({ ...cfg, tie_word_embeddings: false }));
  const sd = readSafetensors(join(untied, 'model.safetensors'));
  const wte = [...sd].find(([n]) => n.endsWith('wte.weight'))![1];
  sd.set('lm_head.weight', cast(wte, 'f32'));
  writeSafetensors(join(untied, 'model.safetensors'), sd);
  const model = loadPretrained(untied);
  assert.ok(model.lm_head);
  savePretrained(model, join(dir, 'untied-saved'));
  const untiedNames = [...readSafetensors(join(dir, 'untied-saved', 'model.safetensors')).keys()];
  assert.ok(untiedNames.includes('lm_head.weight') && !untiedNames.includes('transformer.lm_head.weight'));
  assert.deepEqual(logitsOf(join(dir, 'untied-saved')), logitsOf(fixture));
  // The bare layout written before (no prefix) still loads, with the same logits.
  const bare = join(dir, 'bare');
  cpSync(join(dir, 'tied'), bare, { recursive: true });
  const prefixed = readSafetensors(join(bare, 'model.safetensors'));
  writeSafetensors(
    join(bare, 'model.safetensors'),
    new Map([...prefixed].map(([n, t]) => [n.replace(/^transformer\./, ''), t])),
  );
  assert.deepEqual(logitsOf(bare), logitsOf(fixture));
  rmSync(dir, { recursive: true });
});
