/**
 * Curation in real headless Chromium (as e2e.test.ts): a labeler reads the guidelines, ranks two answers equal (a
 * tie), reports a broken prompt; the admin sees the report and the submission in the review queue, rejects the
 * ranking with a reason and archives the reported prompt. Screenshots go to test-output/screens/curation-*.png.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { createServer } from '../src/server/index.js';
import { ADMIN, openBrowser, SHOTS, signIn, chromiumSkip as skip, WEB } from './helpers/browser.js';
import { Client, jsonl, NDJSON } from './helpers/server.js';

const LABELER = { username: 'lena', password: 'labeler-pass' };

test('e2e curation: guidelines, a tie, a report; the admin reviews, rejects and archives', { skip }, async (t) => {
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

  // The admin's setup through the API: a ranking task, then a task on a broken prompt.
  const api = new Client(app);
  await api.login(ADMIN.username, ADMIN.password);
  await api.req('PUT', '/api/admin/settings', { screeningRequired: false, overlap: 0, goldRate: 0, k: 4 });
  const lena = await api.post('/api/admin/users', { ...LABELER, role: 'labeler', group: 'training' });
  assert.equal(lena.status, 201);
  const tea = 'How do I make a good cup of green tea?';
  const answers = [
    'Use water at about 80 °C and steep for two minutes.',
    'Heat water to roughly 80 °C, then steep the leaves for about two minutes.',
    'Boil it for ten minutes.',
    'Tea is a drink.',
  ];
  await api.req('POST', '/api/admin/import/candidates', jsonl([{ prompt: tea, responses: answers }]), {
    headers: NDJSON,
  });
  const [teaId] = (await api.get('/api/admin/prompts')).json.prompts.map((p: { id: number }) => p.id);
  assert.equal((await api.post('/api/admin/tasks', { kind: 'ranking', promptIds: [teaId] })).status, 201);
  const [broken] = (await api.post('/api/admin/prompts', { prompts: [{ text: 'asdf ;; <<< ??' }] })).json.ids;
  assert.equal((await api.post('/api/admin/tasks', { kind: 'demonstration', promptIds: [broken] })).status, 201);

  const browser = await openBrowser(profile, { height: 860, timeoutMs: 10_000 });
  ctx = browser.ctx;
  const { page, problems } = browser;
  const shot = async (name: string) => {
    await page.waitForTimeout(150);
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width: 1280, height: Math.max(860, Math.min(height, 4000)) });
    await page.screenshot({ path: join(SHOTS, `curation-${name}.png`) });
    await page.setViewportSize({ width: 1280, height: 860 });
  };
  const login = async (u: { username: string; password: string }) => {
    await signIn(page, base, u);
  };

  // ---------------------------------------------------------------- the labeler
  await login(LABELER);
  await page.getByTestId('prompt-text').getByText(tea).waitFor();
  await page.getByTestId('guidelines').getByText('same place').waitFor();
  for (const [i, l] of ['A', 'B', 'C', 'D'].entries()) await page.getByTestId(`likert-${l}-${7 - i}`).click();
  await page.getByTestId('tie-B').click(); // B is as good as A, above it
  await page.getByTestId('ranking-summary').getByText('A = B > C > D').waitFor();
  await shot('label-ranking-tie');
  await page.getByRole('button', { name: 'Submit ranking' }).click();
  await page.getByTestId('prompt-text').getByText('asdf').waitFor();
  await page.getByTestId('report-prompt').click();
  await page.getByTestId('report-reason').fill('The prompt is gibberish.');
  await shot('label-report');
  await page.getByTestId('report-send').click();
  await page.getByText('All caught up').waitFor();
  const stored = await store.db.selectFrom('rankings').select('ranking').execute();
  assert.deepEqual(
    stored.map((r) => JSON.parse(r.ranking)),
    [[[0, 1], 2, 3]],
  );
  await page.getByRole('button', { name: 'Sign out' }).click();

  // ---------------------------------------------------------------- the admin
  await login(ADMIN);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.getByRole('navigation').getByRole('link', { name: 'Review' }).click();
  await page.getByTestId('reports').getByText('The prompt is gibberish.').waitFor();
  await page.getByTestId('submissions').getByText('Ranking: A = B > C > D').waitFor();
  await shot('admin-review');
  const [sub] = (await api.get('/api/admin/submissions')).json.submissions;
  await page.getByTestId(`reject-${sub.assignmentId}`).click();
  await page.getByTestId(`reject-reason-${sub.assignmentId}`).fill('Answers C and D were not read.');
  await page.getByTestId(`reject-send-${sub.assignmentId}`).click();
  await page.getByText('Nothing to review here').waitFor(); // the default view shows work not yet reviewed
  await page.getByTestId('review-filter').selectOption('rejected');
  await page.getByText('rejected: Answers C and D were not read.').waitFor();
  const [report] = (await api.get('/api/admin/reports')).json.reports;
  await page.getByTestId(`archive-report-${report.id}`).click();
  await page.getByText('No open reports').waitFor();
  await shot('admin-review-rejected');
  // Prompts & tasks: a labeled prompt cannot be edited in place; the archived one is listed apart, to restore.
  await page.getByRole('navigation').getByRole('link', { name: 'Prompts & tasks' }).click();
  await page
    .getByRole('row', { name: new RegExp(`${teaId} How do I make`) })
    .getByRole('button', { name: 'Edit' })
    .click();
  await page.getByTestId(`prompt-edit-${teaId}`).fill('How do I make black tea?');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText(/already has labels/).waitFor();
  await shot('admin-prompt-edit-refused');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.getByTestId('show-archived-prompts').check();
  await page.getByTestId(`prompt-archive-${broken}`).getByText('Restore').waitFor();
  await shot('admin-prompts-archived');
  assert.equal(((await api.get('/api/admin/export/rankings')).body as string).trim(), '');
  assert.ok(!((await api.get('/api/admin/export/prompts')).body as string).includes('asdf'));
  assert.deepEqual(problems, []);
});
