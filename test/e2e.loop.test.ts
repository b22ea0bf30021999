/**
 * The whole InstructGPT loop in real headless Chromium (issue 16's first target), each step done as a person would:
 * the admin adds labelers (two in training, one held out) and prompts; the labelers write demonstrations; the admin
 * registers a tiny base model and trains SFT from the Train screen (a worker in this process runs the jobs); the new
 * SFT version and the base produce the ranking candidates; the labelers rank them; the admin trains a reward model and then PPO
 * against it; a blind A/B eval of PPO vs SFT goes to the held-out labeler only; the win rate and its interval on the
 * Evals screen equal the API's. Screenshots of every screen go to test-output/screens/loop-*.png.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { TrainingWorker } from '../src/jobs/worker.js';
import { createServer } from '../src/server/index.js';
import { SamplerPool } from '../src/server/sampler_pool.js';
import { ADMIN, openBrowser, SHOTS, signIn, chromiumSkip as skip, WEB } from './helpers/browser.js';
import { WORDS, writeTinyModel } from './helpers/tiny_lm.js';

const PASSWORD = 'labeler-pass';
/** Two labelers write and rank (training group); one answers the blind evals (held-out group). */
const WRITERS = ['ann', 'ben'];
const JUDGE = 'judy';
/** The training prompts ("say red please.") and the answer a labeler writes for each: the colour. */
const TRAINING = WORDS.map((w) => `say ${w} please.`);
const answerTo = (prompt: string) => prompt.split(' ')[1];

test('e2e: demonstrations → SFT → ranking candidates from SFT and base → rankings → RM → PPO → blind A/B by the held-out group', {
  skip,
}, async (t) => {
  process.env.INSTRUCTKIT_THREADS = '1';
  const root = mkdtempSync(join(tmpdir(), 'ik-e2e-loop-'));
  const modelsDir = join(root, 'models');
  const pool = new SamplerPool({ settings: { maxNewTokens: 8 } });
  const { app, store } = await createServer({
    dbPath: join(root, 'labels.sqlite'),
    passwordCost: 1024,
    bootstrapAdmin: ADMIN,
    webRoot: WEB,
    jobsDir: modelsDir,
    // Every causal version in the registry is served on demand: short answers keep sampling quick.
    servedModels: pool,
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
    await pool.close();
    rmSync(root, { recursive: true, force: true });
  });
  const tiny = writeTinyModel(join(root, 'tiny'));

  const browser = await openBrowser(join(root, 'profile'));
  ctx = browser.ctx;
  const { page, problems } = browser;
  let n = 0;
  // The viewport grows to the page first, so a sticky bar sits where it would instead of over the content.
  const shot = async (name: string) => {
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width: 1280, height: Math.max(1000, Math.min(height, 4000)) });
    await page.screenshot({ path: join(SHOTS, `loop-${String(++n).padStart(2, '0')}-${name}.png`), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 1000 });
  };
  const nav = (name: string) => page.getByRole('navigation').getByRole('link', { name }).click();
  const login = (username: string, password = PASSWORD) => signIn(page, base, { username, password });
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
    const summary = page.getByText(/^Config \(/);
    if (!(await page.locator('details', { has: summary }).evaluate((d) => (d as HTMLDetailsElement).open))) {
      await summary.click();
    }
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
    await writeDemonstrations(page, writer === WRITERS[0] ? () => shot('labeler-demonstration') : undefined);
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
  // The job's folder is recorded relative to the models folder; the page says relative to what.
  assert.ok(((await page.getByTestId('models-dir').textContent()) ?? '').includes(resolve(modelsDir)));
  await shot('admin-models-sft');

  // ------------------------------------------------- the SFT version and the base make the ranking candidates
  await nav('Settings');
  await page.getByTestId(`candidate-model-${sft}`).check();
  await page.getByTestId('candidate-model-tiny base').check();
  await page.getByTestId('candidate-model-imported').uncheck();
  await page.getByTestId('candidate-split').filter({ hasText: 'split across the 2 sources (2 each)' }).waitFor();
  await page.getByTestId('save-settings').click();
  await page.getByText('Settings saved').waitFor();
  await shot('admin-settings');
  await nav('Prompts & tasks');
  await page.getByTestId('select-all').check();
  await page.getByTestId('task-kind').selectOption('ranking');
  await page.getByTestId('create-tasks').click();
  await page.getByText(`Created ${TRAINING.length} ranking tasks`).waitFor({ timeout: 60_000 });
  await shot('admin-data-rankings');
  const sets = await store.db
    .selectFrom('tasks')
    .innerJoin('responses', 'responses.set_id', 'tasks.set_id')
    .select(['tasks.id', 'responses.text', 'responses.model'])
    .where('tasks.kind', '=', 'ranking')
    .execute();
  const byTask = new Map<number, typeof sets>();
  for (const r of sets) byTask.set(r.id, [...(byTask.get(r.id) ?? []), r]);
  assert.equal(byTask.size, TRAINING.length);
  const writers = new Set(sets.map((r) => r.model));
  assert.deepEqual(writers, new Set([sft, 'tiny base']), 'both chosen versions wrote candidates');
  for (const rows of byTask.values()) {
    const texts = rows.map((r) => r.text.trim());
    assert.ok(texts.length >= 2 && texts.length <= 4, `K between 2 and 4: ${texts.length}`);
    assert.equal(new Set(texts).size, texts.length, 'candidates are distinct');
    assert.ok(
      texts.every((x) => x !== ''),
      'no blank candidate',
    );
  }
  await logout();

  // ---------------------------------------------------------------- labelers rank them
  for (const writer of WRITERS) {
    await login(writer);
    await rankAll(page, writer === WRITERS[0] ? () => shot('labeler-ranking') : undefined);
    if (writer === WRITERS[0]) await shot('labeler-rankings-done');
    await logout();
  }
  const rankings = await store.exportRankings('training');
  assert.equal(new Set(rankings.map((r) => r.prompt)).size, TRAINING.length, 'every ranking task was ranked');

  // ---------------------------------------------------------------- reward model, then PPO against it
  await login(ADMIN.username, ADMIN.password);
  const rm = await train('rm', { lr: '0.001', epochs: '1', batchSize: '4' }, { base: sft });
  const ppo = await train(
    'ppo',
    { steps: '2', batchSize: '4', miniBatchSize: '2', ppoEpochs: '1', maxNewTokens: '4' },
    { base: sft, reward: rm },
  );
  const versions = new Map((await store.models.list()).map((m) => [m.name, m]));
  const [sftV, rmV, ppoV] = [versions.get(sft)!, versions.get(rm)!, versions.get(ppo)!];
  assert.deepEqual([rmV.kind, rmV.head, rmV.parentId], ['rm', 'scalar', sftV.id]);
  assert.deepEqual([ppoV.kind, ppoV.head, ppoV.parentId], ['ppo', 'causal', sftV.id]);
  assert.equal((await store.jobs.get(ppoV.jobId!)).rewardModelId, rmV.id);
  // PPO's moving average of the policy's weights (what the paper evaluates) is a version of its own.
  const emaV = versions.get(`${ppo}-ema`)!;
  assert.deepEqual([emaV.kind, emaV.head, emaV.parentId, emaV.jobId], ['ppo', 'causal', ppoV.id, ppoV.jobId]);
  await nav('Models');
  await page.getByTestId(`model-${ppoV.id}`).waitFor();
  await page.getByTestId(`model-${emaV.id}`).waitFor();
  await shot('admin-models');

  // ---------------------------------------------------------------- blind A/B of PPO vs SFT on held-out prompts
  const HELDOUT = WORDS.slice(0, 4).map((w) => `say ${w} now.`);
  await nav('Prompts & tasks');
  await page.getByTestId('typed-prompts').fill(HELDOUT.join('\n'));
  await page.getByRole('radio', { name: 'Held out' }).first().click();
  await page.getByRole('button', { name: 'Add prompts' }).click();
  await page.getByRole('cell', { name: HELDOUT.at(-1) }).waitFor();
  await nav('Evals');
  await page.getByTestId('eval-a').selectOption(ppo);
  await page.getByTestId('eval-b').selectOption(sft);
  await page.getByTestId('create-eval').click();
  const row = page
    .getByTestId('evals-table')
    .getByRole('row')
    .filter({ hasText: `${ppo} vs ${sft}` });
  const created = row.getByText(`0 / ${HELDOUT.length}`);
  await created.or(page.locator('.error-box')).first().waitFor({ timeout: 60_000 });
  assert.ok(await created.isVisible(), `no eval: ${await page.locator('.error-box').allInnerTexts()}`);
  await shot('admin-evals-created');
  await logout();

  // A training labeler gets none of the eval's tasks.
  await login(WRITERS[0]);
  await page.getByText('All caught up').waitFor();
  await shot('labeler-training-no-ab');
  await logout();
  // The held-out labeler answers every one: A, B, about the same, A... Each click is read back as "which model won".
  await login(JUDGE);
  const clicks = await judgeAll(page, () => shot('labeler-heldout-ab'));
  assert.equal(clicks.length, HELDOUT.length);
  await logout();
  const abAssignments = await store.db
    .selectFrom('assignments')
    .innerJoin('tasks', 'tasks.id', 'assignments.task_id')
    .innerJoin('users', 'users.id', 'assignments.user_id')
    .select(['users.username', 'assignments.status'])
    .where('tasks.kind', '=', 'ab')
    .execute();
  assert.deepEqual(
    abAssignments.map((a) => [a.username, a.status]),
    HELDOUT.map(() => [JUDGE, 'done']),
    'the A/B tasks went to the held-out labeler only',
  );
  // Which model each click preferred, read from the responses the judge was shown.
  const modelOf = async (text: string, prompt: string) => {
    const r = await store.db
      .selectFrom('responses')
      .innerJoin('tasks', 'tasks.set_id', 'responses.set_id')
      .innerJoin('prompts', 'prompts.id', 'tasks.prompt_id')
      .select('responses.model')
      .where('tasks.kind', '=', 'ab')
      .where('prompts.text', '=', prompt)
      .where('responses.text', '=', text)
      .executeTakeFirstOrThrow();
    return r.model;
  };
  let [wins, ties, losses] = [0, 0, 0];
  for (const c of clicks) {
    if (c.choice === 'tie') ties++;
    else if ((await modelOf(c.choice === 'a' ? c.a : c.b, c.prompt)) === ppo) wins++;
    else losses++;
  }

  // ---------------------------------------------------------------- the win rate appears, as the API gives it
  await login(ADMIN.username, ADMIN.password);
  await nav('Evals');
  await row.getByText(`${HELDOUT.length} / ${HELDOUT.length}`).waitFor();
  const api = await page.evaluate(async () => (await fetch('/api/admin/evals/1')).json());
  const result = api.eval.result;
  assert.deepEqual([result.wins, result.ties, result.losses], [wins, ties, losses]);
  assert.equal(result.winRate, (wins + ties / 2) / HELDOUT.length);
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const cells = await row.getByRole('cell').allInnerTexts();
  assert.deepEqual(cells.slice(1), [
    `${ppo} vs ${sft}`,
    `${HELDOUT.length} / ${HELDOUT.length}`,
    pct(result.winRate),
    `${pct(result.lo)} – ${pct(result.hi)}`,
    `${wins} / ${ties} / ${losses}`,
    '—', // one labeler per prompt: no agreement figure
  ]);
  assert.ok(result.lo <= result.winRate && result.winRate <= result.hi);
  const elo = await page.getByTestId('elo-table').getByRole('row').allInnerTexts();
  assert.deepEqual(
    elo
      .slice(1)
      .map((r) => r.split(/\s/)[0])
      .sort(),
    [ppo, sft].sort(),
  );
  await page.waitForFunction(() => {
    const img = document.querySelector<HTMLImageElement>('[data-testid="eval-figure"]');
    return img?.complete && img.naturalWidth > 0;
  });
  await shot('admin-evals-result');

  assert.deepEqual(problems, []);
});

/** Ranks every ranking task the labeler is given: a different score per response, one card moved by keyboard. */
async function rankAll(page: Page, first?: () => Promise<unknown>): Promise<void> {
  const cards = page.locator('[data-testid=rank-card]');
  const done = page.getByText('All caught up');
  for (;;) {
    await cards.first().or(done).first().waitFor();
    if (await done.isVisible()) return;
    const prompt = (await page.getByTestId('prompt-text').textContent()) ?? '';
    const letters = await cards.evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.response ?? ''));
    await cards.last().focus();
    await page.keyboard.press('Alt+ArrowUp');
    for (const [i, letter] of letters.entries()) await page.getByTestId(`likert-${letter}-${7 - i}`).click();
    await first?.();
    first = undefined;
    await page.getByRole('button', { name: 'Submit ranking' }).click();
    await page.getByTestId('prompt-text').filter({ hasText: prompt }).waitFor({ state: 'detached' });
  }
}

/** Answers every A/B task in turn A, B, tie, A, …; returns what was shown and chosen. */
async function judgeAll(page: Page, first?: () => Promise<unknown>) {
  const clicks: { prompt: string; a: string; b: string; choice: 'a' | 'b' | 'tie' }[] = [];
  const done = page.getByText('All caught up');
  const texts = page.locator('.ab-pane .resp-text');
  for (;;) {
    await texts.first().or(done).first().waitFor();
    if (await done.isVisible()) return clicks;
    const prompt = (await page.getByTestId('prompt-text').textContent()) ?? '';
    const [a, b] = await texts.allTextContents();
    const choice = (['a', 'b', 'tie'] as const)[clicks.length % 3];
    clicks.push({ prompt, a, b, choice });
    if (clicks.length === 1) await first?.();
    const button = choice === 'tie' ? /^About the same/ : new RegExp(`^${choice.toUpperCase()} is better`);
    await page.getByRole('button', { name: button }).click();
    await page.getByTestId('prompt-text').filter({ hasText: prompt }).waitFor({ state: 'detached' });
  }
}

/** Writes the demonstration for every task the labeler is given (the colour the prompt names), until none is left. */
async function writeDemonstrations(page: Page, first?: () => Promise<unknown>): Promise<void> {
  const input = page.getByTestId('demo-input');
  const done = page.getByText('All caught up');
  for (;;) {
    await input.or(done).first().waitFor();
    if (await done.isVisible()) return;
    const prompt = (await page.getByTestId('prompt-text').textContent()) ?? '';
    await input.fill(answerTo(prompt));
    await first?.();
    first = undefined;
    await input.press('Control+Enter');
    await page.getByTestId('prompt-text').filter({ hasText: prompt }).waitFor({ state: 'detached' });
  }
}

/** Selects the option that names this model version ("#2 sft-2 (sft)"). */
async function pick(select: Locator, model: string): Promise<void> {
  const option = select.locator('option').filter({ hasText: new RegExp(`^#\\d+ ${model}\\b`) });
  await select.selectOption((await option.getAttribute('value')) ?? '');
}
