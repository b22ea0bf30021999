// Every native kernel refuses bad arguments with an Error naming itself — never a crash of the process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../src/tensor/index.js';

// Process controls, not kernels: thread count and the stop-signal flag take no arrays.
const controls = ['getThreads', 'setThreads', 'watchSignals', 'unwatchSignals', 'pendingSignal'];
const kernels = Object.keys(native).filter((k) => !controls.includes(k));

test('kernels named in errors for missing and mistyped arguments', () => {
  assert.ok(kernels.length > 20, `found ${kernels.length} kernels`);
  const badCalls: unknown[][] = [[], Array(16).fill('x'), Array(16).fill(-1), Array(16).fill(null)];
  for (const name of kernels)
    for (const args of badCalls)
      assert.throws(
        () => (native[name] as (...a: unknown[]) => unknown)(...args),
        (e: Error) => e instanceof Error && e.message.includes(name),
        `${name}(${args.length} args) did not throw an error naming it`,
      );
});

test('matmul names the argument that is too short', () => {
  const a = new Float32Array(6);
  assert.throws(
    () => native.matmul(a, new Float32Array(5), new Float32Array(4), 1, 1, 1, 2, 2, 3, false, false, false, false),
    /native matmul: argument 1 has 5 elements, the op needs 6/,
  );
});
