// The README's `npx instructkit …` runs the package's own bin, which must be executable after the build (tsc writes
// files without the execute bit; `npm run build` sets it).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('cli: `npx instructkit` runs the built bin', () => {
  const bin = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin
    .instructkit;
  assert.ok(statSync(join(root, bin)).mode & 0o100, `${bin} is not executable: run npm run build`);
  const r = spawnSync('npx', ['--no-install', 'instructkit', '--help'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /usage: instructkit <command>/);
});
