// instructkit serve: the HTTP API and the built web UI on 127.0.0.1; labels in a SQLite file or a PostgreSQL database.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { adoptAbsolutePaths, registerFolder } from '../../jobs/queue.js';
import { checkModelFolder } from '../../models/index.js';
import { defaultWebRoot, parseMemory, SamplerPool, serve } from '../../server/index.js';
import { describeDb, openStore } from '../../store/index.js';

const HELP = `usage: instructkit serve [--port 8080] [--db instructkit.sqlite | postgres://…] [--admin-user admin] [--admin-password PW]

Serves the labeling app, chat playground and API at http://127.0.0.1:PORT/.
On first start (no users yet) an admin is created: with --admin-password (or $INSTRUCTKIT_ADMIN_PASSWORD),
or else with a random password that is printed once.

  --port N            port (default 8080; 0 picks a free one)
  --host H            interface (default 127.0.0.1)
  --db FILE|URL       SQLite database file (default instructkit.sqlite), or a PostgreSQL database
                      (postgres://user:pass@host:5432/db) that several app servers may share
  --admin-user NAME   first admin's username (default admin)
  --admin-password PW the admin's password (at least 8 characters); given at a later start, it resets that admin's
                      password and enables it (recovers a locked-out admin; its old sessions end)
  --trust-proxy LIST  behind a reverse proxy: the proxies' addresses (comma-separated, CIDR allowed) or "true";
                      the client address (for sign-in limits) is then read from X-Forwarded-For
  --secure-cookie     mark the session cookie Secure (the app is reached over HTTPS, e.g. through that proxy)
  --web DIR           built UI folder (default: the package's web/dist)
  --report DIR        a run's report folder (e.g. runs/demo/report) to show at /report/
  --model DIR         a model folder to chat with and to sample ranking / A/B candidates from (its folder name is
                      its name in the admin settings), registered as a base version in the model registry (once
                      per folder); repeat it for several. Every causal-LM version in the registry is served side by
                      side (the first --model answers chat unless the admin picks others); without any, chat echoes
  --serve-memory SIZE weights the sampling workers may hold at once (e.g. 6G; default half the machine's memory):
                      a version loads on first use, and the least recently used idle one is stopped to make room
  --models DIR        where training jobs' folders and output models go (default models)
  --no-worker         do not start the local training worker (\`instructkit worker\` in a child process, stopped
                      with the server); run workers elsewhere instead, pointed at the same --db and --models`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      db: { type: 'string', default: 'instructkit.sqlite' },
      'admin-user': { type: 'string', default: 'admin' },
      'admin-password': { type: 'string' },
      web: { type: 'string' },
      report: { type: 'string' },
      model: { type: 'string', multiple: true },
      'serve-memory': { type: 'string' },
      models: { type: 'string', default: 'models' },
      'no-worker': { type: 'boolean', default: false },
      'trust-proxy': { type: 'string' },
      'secure-cookie': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: not a port: ${values.port}`);
  const given = values['admin-password'] ?? process.env.INSTRUCTKIT_ADMIN_PASSWORD;
  if (given !== undefined && given.length < 8) throw new Error('--admin-password needs at least 8 characters');

  // Opened first: an unreachable database or a folder that is not a model fails here, before anything listens.
  const store = await openStore({ db: values.db });
  let pool: SamplerPool;
  try {
    pool = new SamplerPool({
      budgetBytes: values['serve-memory'] ? parseMemory(values['serve-memory']) : undefined,
    });
    await adoptAbsolutePaths(store, resolve(values.models), console.error);
    for (const dir of values.model ?? []) {
      // Checked before the folder is registered, so a refused start leaves the registry as it was.
      checkModelFolder(dir, 'causal');
      pool.bytesFor(basename(resolve(dir)), dir);
      const { model } = await registerFolder(store, dir, { kind: 'base', modelsDir: resolve(values.models) });
      pool.add(model.name, resolve(dir));
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  const firstStart = (await store.users.list()).length === 0;
  const password = given ?? randomBytes(12).toString('base64url');
  const webRoot = values.web ?? defaultWebRoot();
  const s = await serve({
    store,
    host: values.host,
    port,
    webRoot,
    reportDir: values.report,
    jobsDir: resolve(values.models),
    servedModels: pool,
    bootstrapAdmin: { username: values['admin-user'], password },
    resetAdmin: given !== undefined,
    secureCookies: values['secure-cookie'],
    trustProxy: trustProxy(values['trust-proxy']),
  });
  console.log(
    `instructkit serving ${describeDb(values.db)} at ${s.address}${webRoot ? '' : ' (API only: run npm run build:web)'}`,
  );
  if (firstStart) {
    console.log(`created admin "${values['admin-user']}"${given === undefined ? ` with password: ${password}` : ''}`);
  } else if (given !== undefined) {
    console.log(`admin "${values['admin-user']}" signs in with the given password (account enabled)`);
  }
  if (values.report) console.log(`report of ${values.report} at ${s.address}/report/`);
  const budget = (pool.budgetBytes / 2 ** 30).toFixed(1);
  const names = pool.names().map((n) => `"${n}"`);
  console.log(
    `serving ${names.length ? names.join(', ') : 'no model yet'} and every causal-LM version in the registry ` +
      `(loaded on first use, ${budget} GiB of weights at most)`,
  );
  // Training never runs in this process: jobs go to a worker process (this one's child unless --no-worker).
  const worker = values['no-worker'] || values.db === ':memory:' ? null : startWorker(values.db, values.models);
  console.log(`open ${s.address}/ in a browser — Ctrl+C to stop`);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void s
        .close()
        .then(() => worker?.stop())
        .then(() => pool.close())
        .then(() => store.close().then(done, done));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}

/** `instructkit worker` as a child: its lines go to this terminal; stop() checkpoints its job and waits for it. */
function startWorker(db: string, models: string) {
  // This server puts its jobs' folders there: made now, so that its worker starts without a missing-folder warning.
  mkdirSync(models, { recursive: true });
  const child = spawn(
    process.execPath,
    [join(import.meta.dirname, '..', 'main.js'), 'worker', '--db', db, '--models', models],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const exited = new Promise<void>((done) => child.once('close', () => done()));
  console.log(`training worker started (pid ${child.pid}; --no-worker to run workers elsewhere)`);
  return {
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function trustProxy(v: string | undefined): boolean | string[] {
  if (v === undefined || v === 'false') return false;
  if (v === 'true') return true;
  const list = v.split(',').map((a) => a.trim());
  if (list.some((a) => !/^[0-9a-fA-F.:/]+$/.test(a))) {
    throw new Error(`--trust-proxy: "${v}" is not "true" or a comma-separated list of addresses (CIDR allowed)`);
  }
  return list;
}
