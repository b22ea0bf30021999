// instructkit worker: claims training jobs from the database and runs them one at a time (src/jobs/worker.ts).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { adoptAbsolutePaths } from '../../jobs/queue.js';
import { TrainingWorker } from '../../jobs/worker.js';
import { describeDb, openStore } from '../../store/index.js';
import { numberFlag } from '../flags.js';

const HELP = `usage: instructkit worker --db instructkit.sqlite|postgres://… --models DIR [options]

Runs the training jobs queued from the app (Admin → Train), one at a time: each as the instructkit command of its
kind in a child process (progress, metrics and log written to the job record), its output model registered as a new
version with its lineage. Several workers may share one database (on PostgreSQL, on any machine that sees the
models folder). A job whose worker stops heartbeating is re-queued and resumed from its last checkpoint by the next
worker; Ctrl-C or SIGTERM checkpoints the job in hand and puts it back in the queue.

  --db FILE|URL        the app's database (default instructkit.sqlite)
  --models DIR         the folder job folders are in, as the app server's --models (default models)
  --id NAME            this worker's name in the job records (default host:pid)
  --poll-ms N          how often to look for work when idle (default 2000)
  --heartbeat-ms N     how often to report while training (default 2000)
  --stale-after-ms N   re-queue a running job whose worker has been silent this long (default 30000)
  --once               run at most one job, then exit`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      db: { type: 'string', default: 'instructkit.sqlite' },
      models: { type: 'string', default: 'models' },
      id: { type: 'string' },
      'poll-ms': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'stale-after-ms': { type: 'string' },
      once: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const ms = (flag: string) =>
    numberFlag(values[flag as 'poll-ms'], `--${flag}`, (v) => Number.isInteger(v) && v > 0, 'a positive integer');
  const modelsDir = resolve(values.models);
  const store = await openStore({ db: values.db });
  await adoptAbsolutePaths(store, modelsDir, console.error);
  const worker = new TrainingWorker({
    store,
    modelsDir,
    id: values.id,
    pollMs: ms('poll-ms'),
    heartbeatMs: ms('heartbeat-ms'),
    staleAfterMs: ms('stale-after-ms'),
  });
  console.error(`worker ${worker.id}: jobs from ${describeDb(values.db)}, folders in ${modelsDir}`);
  if (!existsSync(modelsDir))
    console.error(
      `worker ${worker.id}: ${modelsDir} does not exist (yet): jobs are found in the folder the app server's ` +
        `--models names, as this machine sees it`,
    );
  const stop = () => {
    console.error(`worker ${worker.id}: stopping (a job in hand is checkpointed and put back in the queue)`);
    worker.stop();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    if (values.once) await worker.runOnce();
    else await worker.run();
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await store.close();
  }
  console.error(`worker ${worker.id}: stopped`);
  return 0;
}
