// Every job kind through the worker (tiny models, a few steps): rm on rankings and pairs, then PPO-ptx and GRPO
// against that reward model, and DPO; each output registered with its lineage.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { formGroups, JOB_KINDS } from '../src/jobs/kinds.js';
import { enqueueJob, registerFolder } from '../src/jobs/queue.js';
import { TrainingWorker } from '../src/jobs/worker.js';
import { openStore } from '../src/store/index.js';
import { testDb } from './helpers/db.js';
import { WORDS, writeTinyModel } from './helpers/tiny_lm.js';

process.env.INSTRUCTKIT_THREADS = '1';
const root = mkdtempSync(join(tmpdir(), 'ik-jobs-kinds-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('jobs: rm, ppo (-ptx), grpo and dpo run in the worker and register their models', async () => {
  const store = await openStore({ db: await testDb({ shared: true }) });
  const modelsDir = join(root, 'models');
  const worker = new TrainingWorker({ store, modelsDir, heartbeatMs: 200, log: () => {} });
  try {
    const { model: base } = await registerFolder(store, writeTinyModel(join(root, 'base')), { kind: 'base' });
    await store.importRankings(
      Array.from({ length: 8 }, (_, i) => ({
        prompt: `say ${WORDS[i % 8]} ${i}`,
        responses: [WORDS[i % 8], WORDS[(i + 1) % 8], WORDS[(i + 2) % 8], 'no'],
        ranking: [0, 1, 2, 3],
      })),
    );
    const run = async (kind: 'rm' | 'ppo' | 'grpo' | 'dpo', config: Record<string, unknown>, extra = {}) => {
      const job = await enqueueJob(store, modelsDir, { kind, baseModel: base.id, config, ...extra });
      const done = await worker.runOnce();
      assert.equal(done?.id, job.id);
      assert.equal(done?.state, 'done', `${kind}: ${done?.error}\n${done?.log}`);
      return store.models.get(done!.modelId!);
    };
    const small = { batchSize: 4, lr: 0.001 };
    const rm = await run('rm', { ...small, epochs: 1 });
    assert.deepEqual([rm.kind, rm.head, rm.lineage], ['rm', 'scalar', [base.id]]);
    // In the shared models folder, so recorded relative to it like the models.
    const ptx = join(modelsDir, 'corpus.txt');
    writeFileSync(ptx, WORDS.map((w) => `say ${w} please.`).join('\n\n'));
    const rollout = { steps: 2, batchSize: 4, miniBatchSize: 2, maxNewTokens: 4 };
    const ppo = await run(
      'ppo',
      { ...rollout, ppoEpochs: 1, ptxSeqLen: 8, ptxBatchSize: 2 },
      { rewardModel: rm.id, ptx },
    );
    assert.deepEqual([ppo.kind, ppo.head, ppo.parentId], ['ppo', 'causal', base.id]);
    assert.equal(ppo.config?.steps, 2);
    const ppoJob = await store.jobs.get(ppo.jobId!);
    assert.deepEqual([ppoJob.rewardModelId, ppoJob.ptx], [rm.id, 'corpus.txt']);
    assert.equal(typeof ppo.metrics?.['ptx/loss'], 'number', 'PPO-ptx mixed in the corpus');
    // Its moving average of the policy's weights is a version of its own, the policy its parent.
    const ema = (await store.models.list()).find((m) => m.name === `${ppo.name}-ema`);
    assert.deepEqual(
      [ema?.kind, ema?.head, ema?.parentId, ema?.path],
      ['ppo', 'causal', ppo.id, join(ppo.path, 'ema')],
    );
    const grpo = await run('grpo', { ...rollout, groupSize: 2 }, { rewardModel: rm.id });
    assert.deepEqual([grpo.kind, grpo.parentId], ['grpo', base.id]);
    const dpo = await run('dpo', { ...small, epochs: 1 });
    assert.deepEqual([dpo.kind, dpo.parentId], ['dpo', base.id]);
    assert.equal(typeof dpo.metrics?.['train/loss'], 'number');
  } finally {
    worker.stop();
    await store.close();
  }
});

test('jobs: the config form sections hold every field of each kind once; PPO folds the shared fields, ptx apart', () => {
  for (const kind of Object.keys(JOB_KINDS) as (keyof typeof JOB_KINDS)[]) {
    const fields = Object.keys((JOB_KINDS[kind].spec.schema as { properties: object }).properties).sort();
    const groups = formGroups(kind);
    assert.deepEqual(groups.flatMap((g) => g.fields).sort(), fields, kind);
    assert.ok(groups[0].fields.includes('lr') && !groups[0].advanced, `${kind}: lr in the open section`);
  }
  const ppo = formGroups('ppo');
  const by = (title: string) => ppo.find((g) => g.title.startsWith(title))!;
  assert.deepEqual(by('Pretraining').fields, ['ptxCoef', 'ptxBatchSize', 'ptxSeqLen']);
  assert.equal(by('Pretraining').withPtx, true);
  assert.ok(by('Optimizer').advanced && by('Optimizer').fields.includes('adamBeta1'));
  assert.ok(by('LoRA').advanced && by('LoRA').fields.includes('loraR'));
  assert.ok(by('PPO').fields.includes('klCoef') && !by('PPO').fields.includes('weightDecay'));
  // SFT mixes in a corpus too (off by default); the other kinds take none.
  assert.deepEqual(formGroups('sft').find((g) => g.withPtx)?.fields, ['ptxCoef', 'ptxBatchSize', 'ptxSeqLen']);
  for (const kind of ['rm', 'dpo', 'grpo'] as const)
    assert.equal(
      formGroups(kind).some((g) => g.withPtx),
      false,
      kind,
    );
});

test('jobs: an idle worker says once that it is waiting, and stops when asked', async () => {
  const store = await openStore({ db: await testDb() });
  const lines: string[] = [];
  const worker = new TrainingWorker({ store, modelsDir: join(root, 'idle'), pollMs: 10, log: (l) => lines.push(l) });
  try {
    const running = worker.run();
    await new Promise((r) => setTimeout(r, 200));
    worker.stop();
    await running;
    assert.deepEqual(
      lines.map((l) => l.replace(/^worker \S+: /, '')),
      ['no job queued; looking again every 0.01 s'],
      'one line for the idle spell, not one per poll',
    );
  } finally {
    await store.close();
  }
});
