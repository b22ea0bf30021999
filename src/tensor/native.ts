// Loads the C++ addon built by node-gyp at install. Every kernel is reached through `native`.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Arr = Float32Array | Uint16Array | Int32Array | Uint8Array;
// biome-ignore lint/suspicious/noExplicitAny: kernels take typed arrays and numbers; checked on the C++ side.
export type Kernel = (...args: (Arr | number | boolean | null)[]) => any;

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('instructkit: cannot find the package root from ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

function load(): Record<string, Kernel> {
  const addon = join(findRoot(), 'build', 'Release', 'instructkit.node');
  if (!existsSync(addon))
    throw new Error(`instructkit: native addon missing at ${addon}. Build it with: npm run build:native`);
  return createRequire(import.meta.url)(addon);
}

export const native: Record<string, Kernel> = load();

/** Threads used by every kernel (oneDNN and ours share one OpenMP team). */
export function setThreads(n: number): void {
  native.setThreads(n);
}
export function getThreads(): number {
  return native.getThreads();
}
