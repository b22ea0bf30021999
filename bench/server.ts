/**
 * `npm run bench:server`: bounded loopback load test. N labelers (one per connection) fetch a demonstration task and
 * submit it with an Idempotency-Key; every 10th submit is replayed with the same key. Afterwards the database is
 * read back: `lost` = acknowledged submissions with no stored row, `duplicated` = rows beyond one per acknowledged
 * key. The last line printed is JSON. Knobs: BENCH_DURATION (s, default 30), BENCH_CONNECTIONS (50), BENCH_TASKS.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import autocannon from 'autocannon';
import SqliteDatabase from 'better-sqlite3';

const duration = Math.min(Number(process.env.BENCH_DURATION ?? 30), 120);
const connections = Math.min(Number(process.env.BENCH_CONNECTIONS ?? 50), 200);
const taskCount = Number(process.env.BENCH_TASKS ?? 60_000);
const admin = { username: 'bench-admin', password: 'bench-admin-password' };

const dir = mkdtempSync(join(tmpdir(), 'ik-bench-'));
const dbPath = join(dir, 'bench.sqlite');
const worker = new Worker(new URL('./server-worker.js', import.meta.url), { workerData: { dbPath, admin } });
const address: string = await new Promise((resolve, reject) => {
  worker.once('message', (m) => resolve(m.address));
  worker.once('error', reject);
});
if (!/^http:\/\/127\.0\.0\.1:/.test(address)) throw new Error(`refusing non-loopback address ${address}`);

interface Session {
  cookie: string;
  csrf: string;
}
async function login(username: string, password: string): Promise<Session> {
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
async function call(s: Session, method: string, path: string, body: unknown) {
  const r = await fetch(`${address}${path}`, {
    method,
    headers: { 'content-type': 'application/json', cookie: s.cookie, 'x-csrf-token': s.csrf },
    body: JSON.stringify(body),
  });
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json() as Promise<Record<string, unknown>>;
}

// ---- setup: labelers, prompts, tasks (not timed)
const root = await login(admin.username, admin.password);
await call(root, 'PUT', '/api/admin/settings', { screeningRequired: false, overlap: 0 });
const sessions: Session[] = [];
for (let i = 0; i < connections; i++) {
  await call(root, 'POST', '/api/admin/users', { username: `lab${i}`, password: 'bench-labeler', role: 'labeler' });
  sessions.push(await login(`lab${i}`, 'bench-labeler'));
}
for (let start = 0; start < taskCount; start += 5000) {
  const n = Math.min(5000, taskCount - start);
  const prompts = Array.from({ length: n }, (_, i) => ({ text: `Write a haiku about item ${start + i}.` }));
  const { ids } = (await call(root, 'POST', '/api/admin/prompts', { prompts })) as { ids: number[] };
  await call(root, 'POST', '/api/admin/tasks', { kind: 'demonstration', promptIds: ids });
}

// ---- load
// Each connection is one labeler; its state lives in this closure (autocannon resets `context` every loop).
let nextSession = 0;
let keySeq = 0;
const acked = new Map<string, number>(); // idempotency key → storedId
let replayMismatch = 0;
let submitErrors = 0;
const submitBody = JSON.stringify({
  completion: 'An old silent pond / a frog jumps into the pond / splash! Silence again.',
});

function pipeline(s: Session): autocannon.Request[] {
  const st: { assignment?: number; key?: string; n: number } = { n: 0 };
  const headers = { 'content-type': 'application/json', cookie: s.cookie, 'x-csrf-token': s.csrf };
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
        st.key = `bench-${++keySeq}-${st.assignment}`;
        return {
          ...req,
          path: `/api/assignments/${st.assignment}/submit`,
          headers: { ...headers, 'idempotency-key': st.key },
          body: submitBody,
        };
      },
      onResponse: (status, body) => {
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

const result = await autocannon({
  url: address,
  connections,
  duration,
  timeout: 10,
  requests: [{ method: 'GET', path: '/api/health' }],
  setupClient: (client) => client.setRequests(pipeline(sessions[nextSession++ % sessions.length])),
});

worker.postMessage('close');
await new Promise((resolve) => worker.once('message', resolve));
await worker.terminate();

const db = new SqliteDatabase(dbPath, { readonly: true });
const rows = db.prepare('select id, assignment_id from demonstrations').all() as {
  id: number;
  assignment_id: number;
}[];
db.close();
rmSync(dir, { recursive: true, force: true });
const storedIds = new Set(rows.map((r) => r.id));
const ackedIds = new Set(acked.values());
const lost = [...ackedIds].filter((id) => !storedIds.has(id)).length;
const distinctAssignments = new Set(rows.map((r) => r.assignment_id)).size;
const duplicated = rows.length - distinctAssignments + (ackedIds.size < acked.size ? acked.size - ackedIds.size : 0);

console.log(
  `requests ${result.requests.total}, errors ${result.errors}, timeouts ${result.timeouts}, non2xx ${result.non2xx}, ` +
    `submit errors ${submitErrors}, replay mismatches ${replayMismatch}, ${duration}s × ${connections} connections`,
);
console.log(
  JSON.stringify({
    submitted: acked.size,
    stored: rows.length,
    lost,
    duplicated: duplicated + replayMismatch,
    // Submits still in flight when the clock ran out: stored, but their responses were never read.
    unacknowledged: rows.filter((r) => !ackedIds.has(r.id)).length,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
  }),
);
