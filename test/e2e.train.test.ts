/**
 * The Train and Models screens in real headless Chromium (as e2e.test.ts): the admin registers a model folder, sees
 * a bad config field's error next to it, queues an SFT job, watches it finish (a worker in this process runs it),
 * and finds the new version in Models with its lineage. Screenshots go to test-output/screens/.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { TrainingWorker } from '../src/jobs/worker.js';
import { createServer } from '../src/server/index.js';
import { ADMIN, openBrowser, SHOTS, signIn, chromiumSkip as skip, WEB } from './helpers/browser.js';
import { WORDS, writeTinyModel } from './helpers/tiny_lm.js';

test('e2e: register a model, a bad field shows its error, an SFT job trains, the version joins Models', {
  skip,
}, async (t) => {
  process.env.INSTRUCTKIT_THREADS = '1';
  const root = mkdtempSync(join(tmpdir(), 'ik-e2e-train-'));
  const modelsDir = join(root, 'models');
  const { app, store } = await createServer({
    dbPath: join(root, 'labels.sqlite'),
    passwordCost: 1024,
    bootstrapAdmin: ADMIN,
    webRoot: WEB,
    jobsDir: modelsDir,
  });
  const worker = new TrainingWorker({ store, modelsDir, pollMs: 100, heartbeatMs: 200, log: () => {} });
  const working = worker.run();
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  let ctx: BrowserContext | undefined;
  t.after(async () => {
    worker.stop();
    await working;
    await ctx?.close();
    await app.close();
    rmSync(root, { recursive: true, force: true });
  });
  const tiny = writeTinyModel(join(root, 'tiny'));
  await store.importDemonstrations(
    Array.from({ length: 12 }, (_, i) => ({ prompt: `say ${WORDS[i % 8]} ${i}`, completion: WORDS[(i + 1) % 8] })),
  );
  const browser = await openBrowser(join(root, 'profile'));
  ctx = browser.ctx;
  const { page } = browser;
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const nav = (name: string) => page.getByRole('navigation').getByRole('link', { name }).click();

  await signIn(page, base, ADMIN);

  await nav('Models');
  await page.getByTestId('register-path').fill(join(root, 'nothing-here'));
  await page.getByTestId('register').click();
  await page.getByRole('alert').filter({ hasText: 'is not a model folder' }).waitFor();
  await page.getByTestId('register-path').fill(tiny);
  await page.getByTestId('register-name').fill('tiny base');
  await page.getByTestId('register').click();
  await page.getByTestId('model-1').waitFor();

  await nav('Train');
  await page.getByText(/^Config \(/).click();
  await page.getByTestId('cfg-lr').fill('-1');
  await page.getByTestId('job-submit').click();
  await page.getByTestId('cfg-error-lr').filter({ hasText: 'must be a number' }).waitFor();
  await shot('admin-train-error');
  await page.getByTestId('cfg-lr').fill('0.003');
  await page.getByTestId('cfg-epochs').fill('2');
  await page.getByTestId('cfg-batchSize').fill('4');
  await page.getByTestId('job-submit').click();
  await page.getByTestId('job-1').waitFor();
  await page.getByTestId('job-state').filter({ hasText: 'done' }).waitFor({ timeout: 45_000 });
  await page.getByTestId('job-chart-loss').waitFor();
  await shot('admin-train');
  const job = await store.jobs.get(1);
  assert.equal(job.state, 'done');
  assert.deepEqual([job.config.lr, job.config.epochs, job.config.batchSize], [0.003, 2, 4]);

  await nav('Models');
  await page.getByTestId('model-2').filter({ hasText: 'tiny base → sft-1' }).waitFor();
  await shot('admin-models');

  // The PPO form: its own fields open, the shared optimizer and LoRA fields folded, the ptx fields only with a corpus.
  await nav('Train');
  await page.getByTestId('job-kind').selectOption('ppo');
  await page.getByText(/^Config \(/).click();
  await page.getByTestId('cfg-klCoef').waitFor();
  assert.ok(await page.getByTestId('cfg-lr').isVisible(), 'lr stays beside the trainer fields');
  assert.equal(await page.getByTestId('cfg-adamBeta1').isVisible(), false, 'optimizer details are folded');
  assert.equal(await page.getByTestId('cfg-loraR').isVisible(), false, 'LoRA is folded');
  assert.equal(await page.getByTestId('cfg-ptxCoef').count(), 0, 'no ptxCoef without a corpus');
  await shot('admin-train-ppo-form');
  await page.getByTestId('job-ptx').fill(join(root, 'corpus.txt'));
  await page.getByTestId('cfg-ptxCoef').waitFor();
  await page.getByText(/^Optimizer, schedule and checkpoints/).click();
  await page.getByTestId('cfg-adamBeta1').waitFor();
  await shot('admin-train-ppo-form-ptx');
});
