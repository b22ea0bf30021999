// The registry records a folder inside the shared models folder relative to it, so that machines mounting that
// folder at different places (or through a symbolic link) name the same model.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { localPath, registryPath } from '../src/jobs/model_paths.js';
import { adoptAbsolutePaths, registerFolder } from '../src/jobs/queue.js';
import { openStore } from '../src/store/index.js';
import { writeTinyModel } from './helpers/tiny_lm.js';

const root = mkdtempSync(join(tmpdir(), 'ik-model-paths-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('registryPath: relative inside the models folder (through links too), absolute elsewhere', () => {
  const models = join(root, 'models');
  const inside = join(models, 'job-3', 'model');
  mkdirSync(inside, { recursive: true });
  mkdirSync(join(models, '..hidden'));
  const mount = join(root, 'mount');
  symlinkSync(models, mount);
  assert.equal(registryPath(models, inside), 'job-3/model');
  assert.equal(registryPath(mount, inside), 'job-3/model', 'the models folder named through a link');
  assert.equal(registryPath(models, join(mount, 'job-3', 'model')), 'job-3/model', 'the folder named through a link');
  assert.equal(registryPath(models, join(models, '..hidden')), '..hidden', 'a name starting with dots is inside');
  mkdirSync(join(root, 'elsewhere'));
  symlinkSync(join(root, 'elsewhere'), join(models, 'linked'));
  assert.equal(
    registryPath(models, join(models, 'linked')),
    'linked',
    'a link in the models folder to a folder elsewhere',
  );
  assert.equal(registryPath(models, join(root, 'base')), join(root, 'base'));
  assert.equal(registryPath(models, models), models, 'the models folder itself is not a model of it');
  assert.equal(registryPath(undefined, inside), inside);
  assert.equal(registryPath(join(root, 'not-yet'), join(root, 'not-yet', 'a')), 'a', 'a models folder not made yet');
});

test("localPath: a relative path is found in this machine's models folder; absolute ones as they are", () => {
  assert.equal(localPath('/mnt/shared/models', 'job-3/model'), '/mnt/shared/models/job-3/model');
  assert.equal(localPath('/mnt/shared/models', '/opt/base'), '/opt/base');
  assert.equal(localPath(undefined, '/opt/base'), '/opt/base');
  assert.throws(
    () => localPath(undefined, 'job-3/model'),
    /job-3\/model is inside the shared models folder: .*--models/,
  );
});

test('adoptAbsolutePaths: folders an older version registered by absolute path in the models folder become relative', async () => {
  const models = join(root, 'adopt', 'models');
  const store = await openStore({ db: join(root, 'adopt.sqlite') });
  try {
    // Registered without a models folder, as before the registry recorded relative paths.
    const inside = (await registerFolder(store, writeTinyModel(join(models, 'job-1', 'model')))).model;
    const outside = (await registerFolder(store, writeTinyModel(join(root, 'adopt', 'base')))).model;
    assert.equal(inside.path, join(models, 'job-1', 'model'));
    const said: string[] = [];
    await adoptAbsolutePaths(store, models, (l) => said.push(l));
    assert.deepEqual(said, [`registry: 1 model folder(s) now recorded relative to ${models}`]);
    const paths = new Map((await store.models.list()).map((m) => [m.id, m.path]));
    assert.equal(paths.get(inside.id), 'job-1/model');
    assert.equal(paths.get(outside.id), join(root, 'adopt', 'base'), 'a folder elsewhere keeps its absolute path');
    const again = await registerFolder(store, join(models, 'job-1', 'model'), { modelsDir: models });
    assert.deepEqual([again.created, again.model.id], [false, inside.id]);
  } finally {
    await store.close();
  }
});
