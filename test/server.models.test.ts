// The model registry through the API: register a folder (validated), list versions with their lineage.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { SamplerPool } from '../src/server/index.js';
import { Client, setup } from './helpers/server.js';
import { writeTinyModel } from './helpers/tiny_lm.js';

test('models: register a folder once, 422 naming a path that is not a model folder, admin only', async () => {
  const { app, admin } = await setup();
  try {
    const dir = mkdtempSync(join(tmpdir(), 'ik-models-'));
    const model = writeTinyModel(join(dir, 'tiny'));
    const r = await admin.post('/api/admin/models', { path: model, name: 'tiny base' });
    assert.equal(r.status, 201, String(r.body));
    assert.equal(r.json.model.name, 'tiny base');
    assert.equal(r.json.model.path, resolve(model));
    assert.equal(r.json.model.head, 'causal');
    assert.equal(r.json.model.kind, 'registered');
    assert.ok(r.json.model.params > 0);
    const again = await admin.post('/api/admin/models', { path: `${model}/` });
    assert.equal(again.status, 200, 'the same folder is the same version');
    assert.equal(again.json.model.id, r.json.model.id);

    const notModel = join(dir, 'empty');
    mkdirSync(notModel);
    writeFileSync(join(notModel, 'notes.txt'), 'hi');
    const bad = await admin.post('/api/admin/models', { path: notModel });
    assert.equal(bad.status, 422);
    assert.ok(bad.json.message.includes(notModel), bad.json.message);
    assert.equal(bad.json.details.field, 'path');
    assert.equal((await admin.post('/api/admin/models', { path: join(dir, 'missing') })).status, 422);
    assert.equal((await admin.post('/api/admin/models', { path: 12 })).status, 400);
    // A LoRA adapter folder is not a whole model: the answer says how to merge it, and nothing is registered.
    const adapter = join(dir, 'adapter');
    mkdirSync(adapter);
    writeFileSync(join(adapter, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4 }));
    const lora = await admin.post('/api/admin/models', { path: adapter });
    assert.equal(lora.status, 422);
    assert.match(lora.json.message, /LoRA adapter folder.*instructkit export/);

    const list = await admin.get('/api/models');
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.json.models.map((m: { name: string; lineage: number[] }) => [m.name, m.lineage]),
      [['tiny base', []]],
    );
    assert.equal((await new Client(app).get('/api/models')).status, 401);
  } finally {
    await app.close();
  }
});

// Machines may mount the shared models folder at different places: a folder inside it is recorded relative to it, and
// each server finds it under its own --models.
test("models: a folder in the shared models folder is recorded relative to it and served from this server's mount", async () => {
  const root = mkdtempSync(join(tmpdir(), 'ik-models-shared-'));
  const shared = join(root, 'shared');
  writeTinyModel(join(shared, 'tiny'));
  const mount = join(root, 'mount');
  symlinkSync(shared, mount);
  const pool = new SamplerPool();
  const { app, admin, store } = await setup({ jobsDir: mount, servedModels: pool });
  try {
    // Registered by an older version, by its absolute path: the same folder is still the same version.
    writeTinyModel(join(shared, 'old'));
    const old = await store.models.register({
      name: 'old',
      path: join(shared, 'old'),
      kind: 'registered',
      head: 'causal',
    });
    const oldAgain = await admin.post('/api/admin/models', { path: join(mount, 'old') });
    assert.deepEqual([oldAgain.status, oldAgain.json.model.id], [200, old.model.id]);
    const r = await admin.post('/api/admin/models', { path: join(shared, 'tiny'), name: 'tiny' });
    assert.deepEqual([r.status, r.json.model.path], [201, 'tiny']);
    const again = await admin.post('/api/admin/models', { path: join(mount, 'tiny') });
    assert.deepEqual([again.status, again.json.model.id], [200, r.json.model.id], 'the same folder by another name');
    assert.ok((await admin.get('/api/admin/models')).json.models.includes('tiny'));
    assert.equal(pool.status().find((s) => s.name === 'tiny')?.dir, join(mount, 'tiny'));
  } finally {
    await app.close();
    await pool.close();
    rmSync(root, { recursive: true, force: true });
  }
});
