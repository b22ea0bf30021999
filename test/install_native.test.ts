// npm's install step builds the native addon only when the one built is missing, stale or not loadable (issue 16,
// review defect 12: the first `npx instructkit …` rebuilt it in place, 1.5–2 minutes).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const repo = join(import.meta.dirname, '..', '..');

test('install: an addon built for this Node is kept; a missing, stale or unloadable one is rebuilt', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ik-install-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'scripts'));
  mkdirSync(join(root, 'native'));
  mkdirSync(join(root, 'bin'));
  for (const f of ['install-native.mjs', 'check-system.mjs'])
    copyFileSync(join(repo, 'scripts', f), join(root, 'scripts', f));
  writeFileSync(join(root, 'native', 'kernel.cpp'), '// source');
  writeFileSync(join(root, 'binding.gyp'), '{}');
  // A node-gyp that records its call (the real build takes minutes and is what `npm run build:native` runs).
  const calls = join(root, 'calls.txt');
  writeFileSync(join(root, 'bin', 'node-gyp'), `#!/bin/sh\necho "$@" >> ${calls}\n`);
  chmodSync(join(root, 'bin', 'node-gyp'), 0o755);
  const install = () => {
    const out = execFileSync(process.execPath, [join(root, 'scripts', 'install-native.mjs')], {
      env: { ...process.env, PATH: `${join(root, 'bin')}:${process.env.PATH}`, INSTRUCTKIT_REBUILD: '' },
      encoding: 'utf8',
    });
    const n = existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n').length : 0;
    return { out, builds: n };
  };
  if (!existsSync('/usr/include/oneapi/dnnl/dnnl.hpp')) return t.skip('libdnnl-dev is not installed');

  assert.equal(install().builds, 1, 'not built yet: builds');
  assert.equal(readFileSync(calls, 'utf8').trim(), 'rebuild --nodedir=/usr');
  // The real addon of this checkout, newer than the sources: kept.
  mkdirSync(join(root, 'build', 'Release'), { recursive: true });
  const addon = join(root, 'build', 'Release', 'instructkit.node');
  copyFileSync(join(repo, 'build', 'Release', 'instructkit.node'), addon);
  const kept = install();
  assert.equal(kept.builds, 1);
  assert.match(kept.out, /not rebuilding/);
  // A source edited after the build: rebuilt.
  const later = new Date(Date.now() + 60_000);
  utimesSync(join(root, 'native', 'kernel.cpp'), later, later);
  assert.equal(install().builds, 2);
  // An addon that does not load (another Node's, or a broken file): rebuilt.
  writeFileSync(addon, 'not a shared object');
  const future = new Date(Date.now() + 120_000);
  utimesSync(addon, future, future);
  const broken = install();
  assert.equal(broken.builds, 3);
  assert.match(broken.out, /does not load/);
});
