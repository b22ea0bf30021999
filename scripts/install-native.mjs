// npm's install step. Builds the native addon with node-gyp (after check-system.mjs names any missing apt package),
// unless the addon already built here is current: it exists, is newer than native/ and binding.gyp, and loads in
// this Node. Without that check every `npm install` or first `npx instructkit …` rebuilt it (1.5–2 minutes).
// `npm run build:native` (or INSTRUCTKIT_REBUILD=1) always builds.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(root, 'build', 'Release', 'instructkit.node');

function newest(p) {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(0, ...readdirSync(p).map((f) => newest(join(p, f))));
}

/** Why the addon needs building, or null when the one built is current. */
function staleness() {
  if (process.env.INSTRUCTKIT_REBUILD) return 'INSTRUCTKIT_REBUILD is set';
  if (!existsSync(addon)) return 'not built yet';
  if (Math.max(newest(join(root, 'native')), newest(join(root, 'binding.gyp'))) > statSync(addon).mtimeMs) {
    return 'its sources changed since';
  }
  try {
    createRequire(import.meta.url)(addon);
  } catch (e) {
    return `the built one does not load in Node ${process.version}: ${String(e.message).split('\n')[0]}`;
  }
  return null;
}

const why = staleness();
if (why === null) {
  console.log('instructkit: the native addon is built for this Node; not rebuilding (npm run build:native forces it)');
} else {
  console.log(`instructkit: building the native addon (${why}) ...`);
  execFileSync(process.execPath, [join(root, 'scripts', 'check-system.mjs')], { stdio: 'inherit' });
  execFileSync('node-gyp', ['rebuild', '--nodedir=/usr'], { cwd: root, stdio: 'inherit' });
}
