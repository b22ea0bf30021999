// The model registry through the API: register a folder (validated), list versions with their lineage.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
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
