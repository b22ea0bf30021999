/**
 * `npm run bench:server [-- --db postgres://… --servers 3 --kill]`: bounded loopback load test. N labelers (one per
 * connection, spread over the app-server processes, all on one database) fetch a demonstration task and submit it
 * with an Idempotency-Key; every 10th submit is replayed with the same key. With `--kill`, one of several servers is
 * killed with SIGKILL halfway through, its labelers stop, and after the load each of them whose submit was in flight
 * retries it, with the same key, on another server. Afterwards the database is read back: `lost` = acknowledged
 * submissions with no stored row, `duplicated` = rows beyond one per acknowledged key. The last line printed is JSON.
 * Without --db a temporary SQLite file is used; a PostgreSQL database gets a fresh schema, dropped at the end.
 * With `--train`, an SFT job trains in its worker process meanwhile (bench/train-job.ts); the JSON adds what it did.
 * The first BENCH_WARMUP seconds (default 5) of load are a warm-up: freshly started servers are still compiling their
 * hot paths (with three servers on two cores that takes about 5 s), so `p50_ms`/`p99_ms` cover the BENCH_DURATION
 * seconds after it and `p99_cold_ms` every request. `p99_by_5s_ms` splits the measured window into 5 s spans: on two
 * cores the servers keep speeding up for some 10 s after the warm-up, and the spans show it. Every submission, warm-up
 * or not, counts for lost and duplicated.
 * Knobs: BENCH_DURATION (s, default 30), BENCH_WARMUP (5), BENCH_CONNECTIONS (50), BENCH_TASKS.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { describeDb, isPostgresUrl, openStore } from '../src/store/index.js';
import { startTrainingJob } from './train-job.js';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string' },
    servers: { type: 'string', default: '1' },
    kill: { type: 'boolean' },
    train: { type: 'boolean' },
  },
});
const duration = Math.min(Number(process.env.BENCH_DURATION ?? 30), 120);
const warmup = Math.min(Number(process.env.BENCH_WARMUP ?? 5), 60);
const connections = Math.min(Number(process.env.BENCH_CONNECTIONS ?? 50), 200);
const taskCount = Number(process.env.BENCH_TASKS ?? 60_000);
const serverCount = Number(args.servers);
if (!Number.isInteger(serverCount) || serverCount < 1 || serverCount > 16) throw new Error('--servers: 1 to 16');
const postgres = args.db !== undefined && isPostgresUrl(args.db);
if (serverCount > 1 && !postgres) throw new Error('--servers > 1 needs --db postgres://… (one database they share)');
if (args.kill && serverCount < 2) throw new Error('--kill needs --servers 2 or more (the others take the retries)');
const admin = { username: 'bench-admin', password: 'bench-admin-password' };

// ---- the database: a temporary SQLite file, or a fresh schema of the given PostgreSQL database
const dir = mkdtempSync(join(tmpdir(), 'ik-bench-'));
let db = join(dir, 'bench.sqlite');
let dropSchema = async () => {};
if (postgres) {
  const schema = `ik_bench_${process.pid}`;
  const adminPool = new pg.Pool({ connectionString: args.db, max: 1 });
  await adminPool.query(`drop schema if exists ${schema} cascade; create schema ${schema}`);
  const u = new URL(args.db!);
  u.searchParams.set('options', `-c search_path=${schema}`);
  db = u.toString();
  dropSchema = async () => {
    await adminPool.query(`drop schema if exists ${schema} cascade`);
    await adminPool.end();
  };
}

// ---- the app servers, one process each; the first creates the schema and the admin before the others start
const children: ChildProcess[] = [];
// Should this script fail, its servers go with it.
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
const addresses: string[] = [];
for (let i = 0; i < serverCount; i++) {
  const child = fork(new URL('./server-worker.js', import.meta.url), {
    env: { ...process.env, BENCH_DB: db, BENCH_ADMIN: JSON.stringify(admin) },
  });
  const address: string = await new Promise((resolve, reject) => {
    child.once('message', (m: { address: string }) => resolve(m.address));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server ${i} exited with ${code}`)));
  });
  if (!/^http:\/\/127\.0\.0\.1:/.test(address)) throw new Error(`refusing non-loopback address ${address}`);
  children.push(child);
  addresses.push(address);
}

interface Session {
  cookie: string;
  csrf: string;
}
async function login(address: string, username: string, password: string): Promise<Session> {
  const r = await fetch(`${address}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status}`);
  return {
    cookie: r.headers.get('set-cookie')!.split(';')[0],
    csrf: ((await r.json()) as { csrfToken: string }).csrfToken,
  };
}
async function call(address: string, s: Session, method: string, path: string, body: unknown) {
  const r = await fetch(`${address}${path}`, {
    method,
    headers: { 'content-type': 'application/json', cookie: s.cookie, 'x-csrf-token': s.csrf },
    body: JSON.stringify(body),
  });
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json() as Promise<Record<string, unknown>>;
}

// ---- setup: labelers, prompts, tasks (not timed); labeler i signs in on server i mod N
const root = await login(addresses[0], admin.username, admin.password);
await call(addresses[0], root, 'PUT', '/api/admin/settings', { screeningRequired: false, overlap: 0 });
const sessions: Session[][] = addresses.map(() => []);
for (let i = 0; i < connections; i++) {
  await call(addresses[0], root, 'POST', '/api/admin/users', {
    username: `lab${i}`,
    password: 'bench-labeler',
    role: 'labeler',
  });
  const server = i % serverCount;
  sessions[server].push(await login(addresses[server], `lab${i}`, 'bench-labeler'));
}
for (let start = 0; start < taskCount; start += 5000) {
  const n = Math.min(5000, taskCount - start);
  const prompts = Array.from({ length: n }, (_, i) => ({ text: `Write a haiku about item ${start + i}.` }));
  const { ids } = (await call(addresses[0], root, 'POST', '/api/admin/prompts', { prompts })) as { ids: number[] };
  await call(addresses[0], root, 'POST', '/api/admin/tasks', { kind: 'demonstration', promptIds: ids });
}

// ---- a training job in its worker process, training before the load starts (--train)
const training = args.train ? await startTrainingJob(db, dir) : null;

// ---- load
// Each connection is one labeler; its state lives in this closure (autocannon resets `context` every loop).
interface Labeler {
  session: Session;
  server: number;
  assignment?: number;
  key?: string;
  keyFor?: number;
  /** The submit with `key` was sent and no response has come back (yet). */
  inFlight: boolean;
  n: number;
}
const labelers: Labeler[] = [];
let keySeq = 0;
const acked = new Map<string, number>(); // idempotency key → storedId
let replayMismatch = 0;
let submitErrors = 0;
const submitBody = JSON.stringify({
  completion: 'An old silent pond / a frog jumps into the pond / splash! Silence again.',
});

function pipeline(st: Labeler): autocannon.Request[] {
  const headers = { 'content-type': 'application/json', cookie: st.session.cookie, 'x-csrf-token': st.session.csrf };
  return [
    {
      method: 'POST',
      path: '/api/tasks/next',
      headers,
      body: '{}',
      onResponse: (status, body) => {
        st.assignment = status === 200 ? (JSON.parse(body).assignment?.id as number | undefined) : undefined;
      },
    },
    {
      method: 'POST',
      setupRequest: (req) => {
        if (st.assignment === undefined) return undefined as never; // nothing left: restart the pipeline
        // One key per submission: autocannon resends a request whose connection broke, and a resend is a retry.
        if (st.keyFor !== st.assignment) {
          st.key = `bench-${++keySeq}-${st.assignment}`;
          st.keyFor = st.assignment;
        }
        st.inFlight = true;
        return {
          ...req,
          path: `/api/assignments/${st.assignment}/submit`,
          headers: { ...headers, 'idempotency-key': st.key },
          body: submitBody,
        };
      },
      onResponse: (status, body) => {
        st.inFlight = false;
        if (status === 200) acked.set(st.key!, JSON.parse(body).storedId as number);
        else if (submitErrors++ < 3) console.error('submit', status, body);
      },
    },
    {
      // Every 10th submit is retried with the same key: it must return the stored result and store nothing.
      method: 'POST',
      setupRequest: (req) => {
        if (++st.n % 10 !== 0 || !acked.has(st.key!)) return undefined as never;
        return {
          ...req,
          path: `/api/assignments/${st.assignment}/submit`,
          headers: { ...headers, 'idempotency-key': st.key! },
          body: submitBody,
        };
      },
      onResponse: (status, body) => {
        if (status !== 200 || JSON.parse(body).storedId !== acked.get(st.key!)) replayMismatch++;
      },
    },
  ];
}

const victim = args.kill ? serverCount - 1 : -1;
let killedAt: number | undefined;
const started = Date.now();
console.error(`load: ${connections} labelers on ${serverCount} server(s) for ${warmup} s of warm-up and ${duration} s`);
// Each response's latency and when it came back, to leave the warm-up out of the percentiles.
const latencies: { at: number; ms: number }[] = [];
const runs = addresses.map((address, server) => {
  let next = 0;
  return autocannon({
    url: address,
    connections: sessions[server].length,
    duration: warmup + duration,
    timeout: 10,
    skipAggregateResult: true,
    requests: [{ method: 'GET', path: '/api/health' }],
    setupClient: (client) => {
      const st: Labeler = {
        session: sessions[server][next++ % sessions[server].length],
        server,
        inFlight: false,
        n: 0,
      };
      labelers.push(st);
      client.setRequests(pipeline(st));
      client.on('response', (_status: number, _bytes: number, ms: number) => latencies.push({ at: Date.now(), ms }));
    },
  });
});
if (args.kill) {
  setTimeout(
    () => {
      killedAt = Date.now();
      children[victim].kill('SIGKILL');
      // Its labelers stop too (their in-flight submits are retried below): left running, they would spin on the
      // closed port, taking CPU from the servers still up. autocannon's promise is its instance (untyped).
      (runs[victim] as unknown as autocannon.Instance).stop();
    },
    (warmup + duration / 2) * 1000,
  ).unref();
}
const results = await Promise.all(runs);
// Request and error counts over all servers' clients (autocannon's own merge; its type declarations lack it).
const { aggregateResult } = autocannon as unknown as {
  aggregateResult: (results: unknown[], opts: object) => autocannon.Result;
};
const result = aggregateResult(results, { url: addresses[0], connections, duration: warmup + duration });
const warm = latencies.filter((l) => l.at >= started + warmup * 1000);
const percentile = (ls: { ms: number }[], q: number) => {
  const sorted = ls.map((l) => l.ms).sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN);
};

console.error(`load done after ${((Date.now() - started) / 1000).toFixed(1)} s`);
const trained = await training?.stop();
// ---- the killed server's labelers whose submit got no answer retry it, same key, on another server
let retried = 0;
let retriedReplayed = 0;
if (args.kill) {
  for (const st of labelers.filter((l) => l.server === victim && l.inFlight && !acked.has(l.key!))) {
    const r = await fetch(`${addresses[0]}/api/assignments/${st.assignment}/submit`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        cookie: st.session.cookie,
        'x-csrf-token': st.session.csrf,
        'idempotency-key': st.key!,
      },
      body: submitBody,
    });
    if (r.status !== 200) throw new Error(`retry on server 0: ${r.status} ${await r.text()}`);
    acked.set(st.key!, ((await r.json()) as { storedId: number }).storedId);
    retried++;
    if (r.headers.get('idempotent-replayed') === 'true') retriedReplayed++;
  }
}

for (const [i, child] of children.entries()) {
  if (i === victim) continue;
  child.send('close');
  await new Promise((resolve) => child.once('exit', resolve));
}

const store = await openStore({ db });
// The labelers' submissions (demonstrations imported for --train's job have no assignment).
const rows = await store.db
  .selectFrom('demonstrations')
  .select(['id', 'assignment_id'])
  .where('assignment_id', 'is not', null)
  .execute();
await store.close();
await dropSchema();
rmSync(dir, { recursive: true, force: true });
const storedIds = new Set(rows.map((r) => r.id));
const ackedIds = new Set(acked.values());
const lost = [...ackedIds].filter((id) => !storedIds.has(id)).length;
const distinctAssignments = new Set(rows.map((r) => r.assignment_id)).size;
const duplicated = rows.length - distinctAssignments + (ackedIds.size < acked.size ? acked.size - ackedIds.size : 0);

console.log(
  `requests ${result.requests.total}, errors ${result.errors}, timeouts ${result.timeouts}, non2xx ${result.non2xx}, ` +
    `submit errors ${submitErrors}, replay mismatches ${replayMismatch}, ${warmup} s + ${duration} s × ${connections} ` +
    `connections ` +
    `on ${serverCount} server(s), ${describeDb(args.db ?? 'a temporary SQLite file')}` +
    (args.kill
      ? `; server ${victim} killed (SIGKILL) after ${((killedAt! - started) / 1000).toFixed(1)} s, ` +
        `${retried} in-flight submits retried on server 0 (${retriedReplayed} had been stored: replayed)`
      : ''),
);
console.log(
  JSON.stringify({
    submitted: acked.size,
    stored: rows.length,
    lost,
    duplicated: duplicated + replayMismatch,
    // Submits still in flight when the clock ran out: stored, but their responses were never read.
    unacknowledged: rows.filter((r) => !ackedIds.has(r.id)).length,
    p50_ms: percentile(warm, 0.5),
    p99_ms: percentile(warm, 0.99),
    p99_cold_ms: percentile(latencies, 0.99),
    p99_by_5s_ms: Array.from({ length: Math.ceil(duration / 5) }, (_, i) => {
      const from = started + (warmup + 5 * i) * 1000;
      return percentile(
        warm.filter((l) => l.at >= from && l.at < from + 5000),
        0.99,
      );
    }),
    warmup_s: warmup,
    servers: serverCount,
    dialect: postgres ? 'postgres' : 'sqlite',
    ...(args.kill ? { killed: 1, retried, retried_replayed: retriedReplayed } : {}),
    ...(trained ? { training: 1, ...trained } : {}),
  }),
);
