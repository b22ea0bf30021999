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
    if (up === dir) throw new Error(`instructkit: cannot find the package root from ${fileURLToPath(import.meta.url)}`);
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

// INSTRUCTKIT_PROFILE=1 times every kernel call; profileReport() prints where the time went.
const timings = new Map<string, { calls: number; ms: number }>();

function profiled(kernels: Record<string, Kernel>): Record<string, Kernel> {
  const out: Record<string, Kernel> = {};
  for (const [name, fn] of Object.entries(kernels)) {
    const entry = { calls: 0, ms: 0 };
    timings.set(name, entry);
    out[name] = (...args) => {
      const t0 = performance.now();
      const r = fn(...args);
      entry.ms += performance.now() - t0;
      entry.calls++;
      return r;
    };
  }
  return out;
}

export const native: Record<string, Kernel> = process.env.INSTRUCTKIT_PROFILE ? profiled(load()) : load();

export interface ProfileRow {
  kernel: string;
  calls: number;
  ms: number;
}

/** Kernel time by name, largest first (empty unless INSTRUCTKIT_PROFILE is set). */
export function profileReport(): ProfileRow[] {
  return [...timings]
    .filter(([, e]) => e.calls > 0)
    .map(([kernel, e]) => ({ kernel, ...e }))
    .sort((a, b) => b.ms - a.ms);
}

export function resetProfile(): void {
  for (const e of timings.values()) {
    e.calls = 0;
    e.ms = 0;
  }
}

/** Threads used by every kernel (oneDNN and ours share one OpenMP team). */
export function setThreads(n: number): void {
  native.setThreads(n);
}
export function getThreads(): number {
  return native.getThreads();
}
