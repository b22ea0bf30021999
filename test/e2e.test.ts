/**
 * End-to-end in real headless Chromium (Debian's /usr/bin/chromium via playwright-core) against the real server
 * and built UI: an admin loads prompts, candidates and gold items; a labeler passes screening, writes a
 * demonstration, ranks 4 responses (drag + keyboard) with Likert scores and flags; the admin's export buttons
 * download exactly that; a chat comparison lands in the database; an earlier chat resumes from the history list. Screenshots of every screen go to
 * test-output/screens/. Skipped (with a message) only when chromium is missing outside CI.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { createServer } from '../src/server/index.js';
import { ADMIN, openBrowser, SHOTS, signIn, chromiumSkip as skip, WEB } from './helpers/browser.js';

const LABELER = { username: 'lena', password: 'labeler-pass' };

const jsonl = (rows: object[]) => Buffer.from(`${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);

test('e2e: prompts → screening → demonstration → ranking → export; chat comparison stored', { skip }, async (t) => {
  const { app, store } = await createServer({
    dbPath: ':memory:',
    passwordCost: 1024,
    bootstrapAdmin: ADMIN,
    webRoot: WEB,
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const profile = mkdtempSync(join(tmpdir(), 'ik-chromium-'));
  let ctx: BrowserContext | undefined;
  t.after(async () => {
    await ctx?.close();
    await app.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const browser = await openBrowser(profile, { height: 860, timeoutMs: 10_000, acceptDownloads: true });
  ctx = browser.ctx;
  const { page, problems } = browser;
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  let n = 0;
  const shot = async (name: string) => {
    // Grow the viewport to the page so sticky bars sit where they would, then shoot and restore.
    await page.waitForTimeout(150);
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width: 1280, height: Math.max(860, Math.min(height, 4000)) });
    await page.screenshot({ path: join(SHOTS, `${String(++n).padStart(2, '0')}-${name}.png`) });
    await page.setViewportSize({ width: 1280, height: 860 });
  };
  const login = async (u: { username: string; password: string }) => {
    await signIn(page, base, u);
  };
  const logout = async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  };
  const nav = async (name: string) => {
    await page.getByRole('navigation').getByRole('link', { name }).click();
  };

  // ---------------------------------------------------------------- admin sets up
  await page.goto(`${base}/`);
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  await shot('login');
  await login(ADMIN);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.getByText('No labelers yet').waitFor();
  await shot('admin-overview-empty');

  await nav('People');
  await page.getByTestId('new-username').fill(LABELER.username);
  await page.getByTestId('new-password').fill(LABELER.password);
  await page.getByTestId('create-user').click();
  await page.getByRole('cell', { name: LABELER.username, exact: true }).waitFor();
  await shot('admin-people');

  await nav('Prompts & tasks');
  await page.getByText('No prompts yet').waitFor();
  await shot('admin-data-empty');
  const haiku = 'Write a haiku about <b>autumn</b> & <script>alert(1)</script>';
  const photo = 'Explain photosynthesis to a six-year-old.';
  await page.getByTestId('typed-prompts').fill(`${haiku}\n${photo}\n`);
  await page.getByRole('button', { name: 'Add prompts' }).click();
  await page.getByRole('cell', { name: photo }).waitFor();
  const responses = [
    'Plants eat sunlight! They use light, water and air to make sugar for food.',
    'Photosynthesis is the conversion of photons into chemical energy via chlorophyll a/b.',
    'Plants are like little chefs: sunlight is the stove, water and air are the ingredients, and sugar is the meal.',
    'I like turtles.',
  ];
  await page.getByTestId('import-kind').selectOption('candidates');
  await page.getByTestId('import-file').setInputFiles({
    name: 'candidates.jsonl',
    mimeType: 'application/x-ndjson',
    buffer: jsonl([{ prompt: photo, responses }]),
  });
  await page.getByTestId('import-go').click();
  await page.getByText('Imported 1 candidates record').waitFor();
  const gold = [
    {
      prompt: 'Name a primary colour.',
      responses: ['Red.', 'Blue, I think?', 'Seven.', 'Bananas are yellow.'],
      ranking: [0, 1, 2, 3],
    },
    { prompt: 'What is 2 + 2?', responses: ['5', '4', 'Four-ish', 'A number.'], ranking: [1, 0, 2, 3] },
  ];
  await page.getByTestId('import-kind').selectOption('gold');
  await page
    .getByTestId('import-file')
    .setInputFiles({ name: 'gold.jsonl', mimeType: 'application/x-ndjson', buffer: jsonl(gold) });
  await page.getByTestId('import-go').click();
  await page.getByText('Imported 2 gold records').waitFor();

  // Demonstration task for the haiku prompt, ranking task (K = 4 from "imported") for the other.
  await page.getByRole('row', { name: /haiku/ }).getByRole('checkbox').check();
  await page.getByTestId('task-kind').selectOption('demonstration');
  await page.getByTestId('create-tasks').click();
  await page.getByText('Created 1 demonstration task').waitFor();
  await page
    .getByRole('row', { name: /photosynthesis/ })
    .first()
    .getByRole('checkbox')
    .check();
  await page.getByTestId('task-kind').selectOption('ranking');
  await page.getByTestId('create-tasks').click();
  await page.getByText('Created 1 ranking task').waitFor();
  // The same prompt again is skipped and reported, not a second task.
  await page.getByRole('row', { name: /haiku/ }).first().getByRole('checkbox').check();
  await page.getByTestId('task-kind').selectOption('demonstration');
  await page.getByTestId('create-tasks').click();
  await page.getByText('1 prompt(s) already had one and were skipped').waitFor();
  // The task list searches the prompts.
  await page.getByTestId('task-search').fill('PHOTOSYNTHESIS');
  await page.getByTestId('task-count').filter({ hasText: /^1$/ }).waitFor();
  await shot('admin-data');
  await page.getByTestId('task-search').fill('');

  await nav('Settings');
  await page.getByTestId('k').waitFor();
  assert.ok(await page.getByTestId('candidate-model-imported').isChecked(), 'imported candidates by default');
  assert.ok(await page.getByTestId('candidate-model-imported').isDisabled(), 'the last source cannot be unticked');
  assert.equal(await page.getByTestId('k-value').textContent(), '4');
  await page.getByTestId('chat-every').fill('2'); // every 2nd chat reply asks for a comparison
  await page.getByTestId('save-settings').click();
  await page.getByText('Settings saved').waitFor();
  await shot('admin-settings');

  await nav('Screening');
  for (const g of await store.gold.list()) await page.getByTestId(`gold-${g.id}`).check();
  await page.getByTestId('save-screening').click();
  await page.getByText('Screening test saved: 2 items').waitFor();
  await shot('admin-screening');
  await logout();

  // ---------------------------------------------------------------- labeler: screening
  await login(LABELER);
  await page.getByText('Screening test.').waitFor();
  await shot('labeler-screening');
  // Item 1: the reference order is the shown order. Item 2: move B above A with the keyboard.
  await page.getByRole('button', { name: 'Next question →' }).click();
  await page.getByTestId('prompt-text').getByText('What is 2 + 2?').waitFor();
  await page.locator('[data-testid=rank-card][data-response=B]').focus();
  await page.keyboard.press('Alt+ArrowUp');
  assert.deepEqual(await cardOrder(page), ['B', 'A', 'C', 'D']);
  await page.getByRole('button', { name: 'Submit screening test' }).click();
  await page.getByText('You passed the screening test').waitFor();
  // Pass or fail only, never a score that would teach the reference answers.
  assert.doesNotMatch((await page.getByTestId('screening-result').textContent()) ?? '', /%/);
  await shot('labeler-screening-passed');
  await page.getByRole('button', { name: 'Start labeling →' }).click();

  // ---------------------------------------------------------------- labeler: demonstration
  await page.getByTestId('demo-input').waitFor();
  assert.equal(await page.getByTestId('prompt-text').textContent(), haiku); // markup shown as text
  const completion =
    'Crimson leaves drift down <i>softly</i>\nthe maple lets go of summer —\ncold wind counts the gold';
  await page.getByTestId('demo-input').fill(completion);
  await shot('labeler-demonstration');
  // The session runs out while the labeler writes: submitting signs them out with the reason, and after signing
  // in again the draft is still there (kept in local storage).
  await store.db.updateTable('sessions').set({ expires_at: 0 }).execute();
  await page.getByTestId('demo-input').press('Control+Enter');
  await page.getByTestId('signed-out-notice').getByText('Your session expired').waitFor();
  await shot('login-session-expired');
  await page.getByLabel('Username').fill(LABELER.username);
  await page.getByLabel('Password').fill(LABELER.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('demo-input').waitFor();
  assert.equal(await page.getByTestId('demo-input').inputValue(), completion);
  await page.getByTestId('demo-input').press('Control+Enter');

  // ---------------------------------------------------------------- labeler: ranking (drag + keyboard)
  await page.locator('[data-testid=rank-card]').first().waitFor();
  assert.equal(await page.getByTestId('session-count').locator('.counter-n').textContent(), '1');
  assert.deepEqual(await cardOrder(page), ['A', 'B', 'C', 'D']);
  // Drag C to the top: C A B D.
  await page
    .locator('[data-testid=rank-card][data-response=C]')
    .dragTo(page.locator('[data-testid=rank-card][data-response=A]'), { targetPosition: { x: 200, y: 10 } });
  assert.deepEqual(await cardOrder(page), ['C', 'A', 'B', 'D']);
  // Keyboard: B down one (Alt+↓): C A D B.
  await page.locator('[data-testid=rank-card][data-response=B]').focus();
  await page.keyboard.press('Alt+ArrowDown');
  assert.deepEqual(await cardOrder(page), ['C', 'A', 'D', 'B']);
  // Scores: B with the number key while focused, the others by clicking.
  await page.keyboard.press('2');
  await page.getByTestId('likert-C-7').click();
  await page.getByTestId('likert-A-5').click();
  await page.getByTestId('likert-D-3').click();
  await page.getByTestId('flags-B').click();
  await page.getByTestId('flag-B-hallucination').check();
  await page.getByTestId('flags-D').click();
  await page.getByTestId('flag-D-fails_to_follow_instruction').check();
  await page.getByTestId('flag-D-expresses_opinion').check();
  assert.match((await page.getByTestId('ranking-summary').textContent()) ?? '', /C > A > D > B · 4\/4 scored/);
  await shot('labeler-ranking');
  await page.getByRole('button', { name: 'Submit ranking' }).click();
  await page.getByText('All caught up').waitFor();
  assert.equal(await page.getByTestId('session-count').locator('.counter-n').textContent(), '2');
  await shot('labeler-done');

  // ---------------------------------------------------------------- chat: reply 1 streams, reply 2 compares
  await nav('Chat');
  await page.getByText('Start a conversation').waitFor();
  await shot('chat-empty');
  await page.getByTestId('chat-input').fill('Hello there');
  await page.getByTestId('chat-input').press('Enter');
  await page.getByTestId('msg-assistant').first().getByText('Hello there').waitFor();
  await page.getByTestId('chat-send').getByText('Send').waitFor(); // stream finished
  await shot('chat-streamed');
  const ask = 'Tell me about <script>alert(1)</script> sea otters';
  await page.getByTestId('chat-input').fill(ask);
  await page.getByTestId('chat-input').press('Enter');
  await page.getByTestId('chat-compare').waitFor();
  await shot('chat-compare');
  const replyB = (await page.getByTestId('chat-compare').locator('.resp-text').nth(1).textContent()) ?? '';
  await page.getByTestId('choose-b').click();
  await page.getByTestId('chat-compare').waitFor({ state: 'detached' });
  assert.equal(await page.getByTestId('chat-compared').textContent(), '1');
  assert.equal(await page.getByTestId('msg-assistant').nth(1).locator('.msg-text').textContent(), replyB);
  const pairs = await store.db.selectFrom('comparisons').selectAll().where('kind', '=', 'chat').execute();
  assert.equal(pairs.length, 1);
  assert.equal(pairs[0].prompt, `user: Hello there\nassistant: Hello there\nuser: ${ask}`);
  assert.equal(pairs[0].choice, 'b');
  assert.equal(pairs[0].b_text, replyB);
  assert.equal(pairs[0].user_id, (await store.users.list()).find((u) => u.username === LABELER.username)!.id);
  // Chat history: start a second chat, then resume the first one from the list.
  await page.getByTestId('chat-new').click();
  await page.getByText('Start a conversation').waitFor();
  await page.getByTestId('chat-input').fill('A second chat');
  await page.getByTestId('chat-input').press('Enter');
  await page.getByTestId('msg-assistant').first().getByText('A second chat').waitFor();
  await page.getByTestId('chat-send').getByText('Send').waitFor();
  const history = page.getByTestId('chat-history').locator('.chat-history-item');
  await history.nth(1).getByText('Hello there').waitFor(); // most recent first
  assert.equal(await history.count(), 2);
  await history.nth(1).click();
  await page.getByTestId('msg-user').nth(1).getByText(ask).waitFor();
  assert.equal(await page.getByTestId('msg-assistant').nth(1).locator('.msg-text').textContent(), replyB);
  await shot('chat-history');
  await logout();

  // ---------------------------------------------------------------- admin: dashboard and exports
  await login(ADMIN);
  await page.getByTestId('stat-rankings').waitFor();
  assert.equal(await page.getByTestId('stat-rankings').locator('.stat-value').textContent(), '1');
  assert.equal(await page.getByTestId('stat-demos').locator('.stat-value').textContent(), '1');
  await page.getByRole('cell', { name: LABELER.username, exact: true }).waitFor();
  await shot('admin-overview');
  const download = async (kind: string) => {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId(`export-${kind}`).click()]);
    const path = await dl.path();
    return readFileSync(path, 'utf8');
  };
  const rankings = await download('rankings');
  assert.equal(rankings.trim().split('\n').length, 1);
  assert.deepEqual(JSON.parse(rankings), {
    prompt: photo,
    responses,
    ranking: [2, 0, 3, 1],
    labeler: LABELER.username,
    likert: [5, 2, 7, 3],
    flags: { hallucination: [1], fails_to_follow_instruction: [3], expresses_opinion: [3] },
  });
  const demos = await download('demonstrations');
  assert.equal(demos, `${JSON.stringify({ prompt: haiku, completion })}\n`);

  assert.deepEqual(problems, []);
});

async function cardOrder(page: Page): Promise<string[]> {
  return page
    .locator('[data-testid=rank-card]')
    .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.response ?? ''));
}
