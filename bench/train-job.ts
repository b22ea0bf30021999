/**
 * `npm run bench:server -- --train`: a training job running in its worker process while the labelers' load runs, as
 * the API would have it in production (the worker is another process; the API process never trains). A small GPT-2
 * (4 layers, d 128, context 128) is written and registered, demonstrations are imported, and an SFT job with far
 * more epochs than the load lasts is queued; `stop()` cancels it (its worker checkpoints) and reports what it did.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { enqueueJob, registerFolder } from '../src/jobs/queue.js';
import { GPT2, gpt2Defaults, savePretrained } from '../src/models/index.js';
import { openStore } from '../src/store/index.js';
import { Rng } from '../src/tensor/index.js';
import { trainBpe } from '../src/tokenizer/index.js';

const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

export async function startTrainingJob(db: string, dir: string) {
  const modelsDir = join(dir, 'models');
  const baseDir = join(dir, 'base');
  const texts = Array.from(
    { length: 200 },
    (_, i) => `Write a haiku about item ${i}. An old pond, item ${i} splashes.`,
  );
  const tokenizer = trainBpe(texts, { vocabSize: 512, chatTokens: true });
  const config = { ...gpt2Defaults, vocabSize: tokenizer.vocabSize, nPositions: 128, nEmbd: 128, nLayer: 4, nHead: 4 };
  savePretrained(new GPT2(config, new Rng(0)), baseDir);
  tokenizer.save(baseDir);

  const store = await openStore({ db });
  const { model } = await registerFolder(store, baseDir, { name: 'bench base' });
  await store.importDemonstrations(
    texts.map((t, i) => ({ prompt: `Write a haiku about item ${i}.`, completion: t.split('. ')[1] })),
  );
  const job = await enqueueJob(store, modelsDir, {
    kind: 'sft',
    baseModel: model.id,
    config: { epochs: 10_000, batchSize: 8, lr: 0.0003, saveEvery: 200 },
  });
  const worker: ChildProcess = spawn(
    process.execPath,
    [cli, 'worker', '--db', db, '--models', modelsDir, '--poll-ms', '200', '--heartbeat-ms', '500'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  process.on('exit', () => worker.kill('SIGKILL'));
  // The load starts once the job trains.
  for (let t = 0; ; t++) {
    const j = await store.jobs.get(job.id);
    if (j.state === 'running' && (j.progress?.step ?? 0) > 0) break;
    if (j.state !== 'queued' && j.state !== 'running') throw new Error(`bench job ${j.state}: ${j.error}\n${j.log}`);
    if (t > 600) throw new Error('the bench job did not start training within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const stepAtStart = (await store.jobs.get(job.id)).progress?.step ?? 0;

  return {
    /** Cancels the job, stops the worker; the steps trained while the load ran, and the job's state then. */
    async stop(): Promise<{ train_state_during_load: string; train_steps_during_load: number }> {
      const during = await store.jobs.get(job.id);
      await store.jobs.cancel(job.id);
      const exited = new Promise((r) => worker.once('close', r));
      for (let t = 0; t < 300; t++) {
        if ((await store.jobs.get(job.id)).state !== 'running') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      worker.kill('SIGTERM');
      await exited;
      await store.close();
      return {
        train_state_during_load: during.state,
        train_steps_during_load: (during.progress?.step ?? 0) - stepAtStart,
      };
    },
  };
}
