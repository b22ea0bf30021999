// Builds the web UI (web/ → web/dist) only when a source is newer than the last build, so `npm test` stays fast.
// `node scripts/build-web.mjs --force` always builds.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'web/dist/index.html');
// The UI's own sources plus the one server-side module it bundles (the flag names).
const sources = [
  'web/src',
  'web/public',
  'web/index.html',
  'web/vite.config.ts',
  'web/tsconfig.json',
  'src/store/schema.ts',
];

function newest(p) {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(0, ...readdirSync(p).map((f) => newest(join(p, f))));
}

const built = existsSync(out) ? statSync(out).mtimeMs : 0;
const src = Math.max(...sources.map((s) => newest(join(root, s))));
if (process.argv.includes('--force') || src > built) {
  console.log('building web UI (web/dist) ...');
  const bin = (n) => join(root, 'node_modules/.bin', n);
  execFileSync(bin('tsc'), ['-p', 'web'], { cwd: root, stdio: 'inherit' });
  execFileSync(bin('vite'), ['build', 'web', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
} else {
  console.log('web UI is up to date (web/dist)');
}
