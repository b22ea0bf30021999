// Several model versions served side by side (server/sampler_pool.ts): workers start on first use, the weights held
// stay under the budget, the least recently used idle worker is evicted, and one with a request in flight never is.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadPretrained, residentBytes } from '../src/models/index.js';
import { collect, type PooledSampler, parseMemory, SamplerPool } from '../src/server/index.js';
import { openStore } from '../src/store/index.js';
import { writeTinyModel } from './helpers/tiny_lm.js';

/** A pool of fake samplers whose sizes are their folder names; logs starts and stops. */
function fakePool(budgetBytes: number, log: string[], opts: { failFirst?: string; stopMs?: number } = {}) {
  let failed = false;
  const start = async (name: string): Promise<PooledSampler> => {
    if (name === opts.failFirst && !failed) {
      failed = true;
      throw new Error(`cannot serve ${name}: broken`);
    }
    log.push(`start ${name}`);
    return {
      name,
      async *stream() {
        yield `${name}:1`;
        yield `${name}:2`;
      },
      generate: async (_p: string, k: number) => Array.from({ length: k }, (_, i) => `${name}-${i}`),
      close: async () => {
        await new Promise((r) => setTimeout(r, opts.stopMs ?? 0));
        log.push(`stop ${name}`);
      },
    };
  };
  return new SamplerPool({ budgetBytes, start, estimate: (dir) => Number(dir) });
}

test('the least recently used idle version is evicted to make room, and a version larger than the budget is refused', async () => {
  const log: string[] = [];
  const pool = fakePool(100, log);
  pool.add('a', '40');
  pool.add('b', '40');
  pool.add('c', '40');
  assert.throws(() => pool.add('huge', '101'), /needs .* more than the serving budget .*raise --serve-memory/);
  assert.throws(() => pool.add('a', '30'), /already served from 40/);
  assert.throws(() => pool.chatModel('nope'), /no model "nope" is served; served: a, b, c/);
  assert.deepEqual(log, [], 'nothing loads before its first request');

  assert.deepEqual(await pool.candidateSource('a').generate('p', 2), ['a-0', 'a-1']);
  assert.equal(await collect(pool.chatModel('b').stream([], {})), 'b:1b:2');
  await pool.candidateSource('a').generate('p', 1); // a is now more recent than b
  await pool.candidateSource('c').generate('p', 1);
  assert.deepEqual(log, ['start a', 'start b', 'stop b', 'start c']);
  assert.equal(pool.usedBytes(), 80);
  assert.deepEqual(
    pool.status().map((s) => [s.name, s.loaded, s.inFlight]),
    [
      ['a', true, 0],
      ['b', false, 0],
      ['c', true, 0],
    ],
  );
  await pool.close();
  assert.equal(pool.usedBytes(), 0);
  assert.deepEqual(log.slice(4).sort(), ['stop a', 'stop c']);
});

test('a version with a request in flight is never evicted: the next load waits until it is released', async () => {
  const log: string[] = [];
  const pool = fakePool(100, log);
  pool.add('a', '60');
  pool.add('b', '60');
  // A chat reply from a, read one token and then held open.
  const reply = pool.chatModel('a').stream([], {})[Symbol.asyncIterator]();
  assert.deepEqual(await reply.next(), { done: false, value: 'a:1' });
  let bDone = false;
  const b = pool
    .candidateSource('b')
    .generate('p', 1)
    .then((r) => {
      bDone = true;
      return r;
    });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(bDone, false, 'b waits while a is busy');
  assert.deepEqual(log, ['start a']);
  assert.deepEqual(await reply.next(), { done: false, value: 'a:2' });
  assert.equal((await reply.next()).done, true); // the reply ends: a is released
  assert.deepEqual(await b, ['b-0']);
  assert.deepEqual(log, ['start a', 'stop a', 'start b']);
  assert.ok(pool.usedBytes() <= pool.budgetBytes);

  // A reply stopped part way (return() on the stream) releases its version the same way.
  const stopped = pool.chatModel('a').stream([], {})[Symbol.asyncIterator]();
  await stopped.next();
  await stopped.return?.();
  assert.equal(pool.status().find((s) => s.name === 'a')!.inFlight, 0);

  // Closing the pool fails a load still waiting for room, and refuses later requests.
  const held = pool.chatModel('a').stream([], {})[Symbol.asyncIterator]();
  await held.next();
  const waiting = assert.rejects(pool.candidateSource('b').generate('p', 1), /shutting down/);
  await new Promise((r) => setTimeout(r, 10));
  await pool.close();
  await waiting;
  await assert.rejects(pool.candidateSource('a').generate('p', 1), /shutting down/);
});

test('a version asked for again while its worker is being stopped waits for room instead of deadlocking', async () => {
  const log: string[] = [];
  // Stopping takes a while, as a worker thread's exit does.
  const pool = fakePool(100, log, { stopMs: 20 });
  pool.add('a', '60');
  pool.add('b', '60');
  await pool.candidateSource('b').generate('p', 1);
  // a's load evicts the idle b; b is asked for again before its old worker has stopped.
  const both = Promise.all([collect(pool.chatModel('a').stream([], {})), collect(pool.chatModel('b').stream([], {}))]);
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('deadlock')), 2000));
  assert.deepEqual(await Promise.race([both, timeout]), ['a:1a:2', 'b:1b:2']);
  // Never two workers at once (60 + 60 > 100): every start after the first follows a stop.
  let running = 0;
  for (const line of log) {
    running += line.startsWith('start') ? 1 : -1;
    assert.ok(running <= 1, log.join(', '));
  }
  assert.ok(log.includes('start a'));
  assert.equal(pool.usedBytes(), 60);
  await pool.close();
});

test('a failed load is reported and forgotten, so the next request tries again', async () => {
  const log: string[] = [];
  const pool = fakePool(100, log, { failFirst: 'a' });
  pool.add('a', '60');
  await assert.rejects(pool.candidateSource('a').generate('p', 1), /cannot serve a: broken/);
  assert.equal(pool.usedBytes(), 0);
  assert.deepEqual(pool.status()[0], { name: 'a', dir: '60', bytes: 60, loaded: false, inFlight: 0 });
  assert.deepEqual(await pool.candidateSource('a').generate('p', 1), ['a-0']);
  await pool.close();
});

test('--serve-memory sizes', () => {
  assert.equal(parseMemory('512M'), 512 * 2 ** 20);
  assert.equal(parseMemory('1.5GiB'), 1.5 * 2 ** 30);
  assert.equal(parseMemory('2048'), 2048);
  assert.throws(() => parseMemory('lots'), /--serve-memory: "lots" is not a size/);
});

test('two real model folders: workers start on first use and the older one is stopped to stay in the budget', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ik-pool-'));
  try {
    const dirA = writeTinyModel(join(root, 'a'), { seed: 1 });
    const dirB = writeTinyModel(join(root, 'b'), { seed: 2, nEmbd: 48 });
    // The estimate is the parameter count × 4 bytes (f32 checkpoint).
    assert.equal(residentBytes(dirA), loadPretrained(dirA).numParameters() * 4);
    const [bytesA, bytesB] = [residentBytes(dirA), residentBytes(dirB)];
    assert.ok(bytesB > bytesA);
    // Room for either one, not both.
    const pool = new SamplerPool({ budgetBytes: bytesB + Math.floor(bytesA / 2), settings: { maxNewTokens: 8 } });
    after(() => pool.close());
    pool.add('a', dirA);
    pool.add('b', dirB);
    const messages = [{ role: 'user' as const, content: 'say red then blue please.' }];
    const a = await collect(pool.chatModel('a').stream(messages, { seed: 3 }));
    assert.deepEqual(
      pool.status().map((s) => s.loaded),
      [true, false],
    );
    assert.equal((await pool.candidateSource('b').generate('say gold then pink please.', 3)).length, 3);
    assert.deepEqual(
      pool.status().map((s) => s.loaded),
      [false, true],
    );
    // Loaded again on demand, a version answers as before (same seed, same text).
    assert.equal(await collect(pool.chatModel('a').stream(messages, { seed: 3 })), a);
    assert.ok(pool.usedBytes() <= pool.budgetBytes);
    // A reply stopped by its reader (the chat's Stop) releases its version, and the worker goes on serving.
    const ac = new AbortController();
    for await (const _ of pool.chatModel('a').stream(messages, { signal: ac.signal })) ac.abort();
    assert.deepEqual(
      pool.status().map((s) => s.inFlight),
      [0, 0],
    );
    assert.equal(await collect(pool.chatModel('a').stream(messages, { seed: 3 })), a);
    await pool.close();
  } finally {
    rmSync(root, { recursive: true });
  }
});

/** Runs `instructkit serve ARGS` until it prints `until` (then SIGTERM) or exits; returns its output and exit code. */
function serveCli(args: string[], until: RegExp): Promise<{ code: number | null; out: string }> {
  const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--no-worker', ...args], { stdio: 'pipe' });
  let out = '';
  const read = (d: Buffer) => {
    out += d;
    if (until.test(out)) child.kill('SIGTERM');
  };
  child.stdout.on('data', read);
  child.stderr.on('data', read);
  return new Promise((done) => child.on('close', (code) => done({ code, out })));
}

test('serve: --model repeats, each folder registered and served; a version over --serve-memory is refused at start', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ik-pool-cli-'));
  try {
    const dirA = writeTinyModel(join(root, 'alpha'), { seed: 1 });
    const dirB = writeTinyModel(join(root, 'beta'), { seed: 2 });
    const db = join(root, 'labels.sqlite');
    const ok = await serveCli(
      ['--db', db, '--admin-password', 'admin-password', '--model', dirA, '--model', dirB, '--serve-memory', '64M'],
      /open http/,
    );
    assert.match(
      ok.out,
      /serving "alpha", "beta" and every causal-LM version in the registry \(loaded on first use, 0\.1 GiB/,
    );
    const tooSmall = await serveCli(['--db', db, '--model', dirA, '--serve-memory', '1K'], /open http/);
    assert.notEqual(tooSmall.code, 0);
    assert.match(tooSmall.out, /model "alpha" .* needs .* more than the serving budget of .*raise --serve-memory/);
    // Nothing was registered by the refused start: a fresh database stays empty.
    const fresh = join(root, 'fresh.sqlite');
    const refused = await serveCli(['--db', fresh, '--model', dirB, '--serve-memory', '1K'], /open http/);
    assert.notEqual(refused.code, 0);
    const store = await openStore({ db: fresh });
    assert.deepEqual(await store.models.list(), []);
    await store.close();
  } finally {
    rmSync(root, { recursive: true });
  }
});
