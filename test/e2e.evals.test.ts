/**
 * The Evals screen in real headless Chromium (as e2e.test.ts): the admin creates a blind A/B eval of two versions,
 * the held-out labeler answers it, and the screen shows the win rate with its interval, the Elo table and the
 * Figure 1 chart. Screenshot to test-output/screens/.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { createServer } from '../src/server/index.js';
import type { CandidateSource } from '../src/store/index.js';
import { ADMIN, openBrowser, SHOTS, signIn, chromiumSkip as skip, WEB } from './helpers/browser.js';
import { Client, idem, labeler } from './helpers/server.js';

const says = (name: string): CandidateSource => ({
  generate: async (prompt, k) => Array.from({ length: k }, () => `${name} says ${prompt}`),
});

test('e2e: the admin creates a blind eval, the held-out group answers, the win rate and Elo table appear', {
  skip,
}, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ik-e2e-evals-'));
  const { app, store } = await createServer({
    dbPath: join(root, 'labels.sqlite'),
    passwordCost: 1024,
    bootstrapAdmin: ADMIN,
    webRoot: WEB,
    candidateSources: { sft: says('sft'), ppo: says('ppo') },
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  let ctx: BrowserContext | undefined;
  t.after(async () => {
    await ctx?.close();
    await app.close();
    rmSync(root, { recursive: true, force: true });
  });
  await store.prompts.add(
    ['h1', 'h2', 'h3', 'h4'].map((text) => ({ text, split: 'heldout' as const })),
    'typed',
  );
  const browser = await openBrowser(join(root, 'profile'));
  ctx = browser.ctx;
  const { page, problems } = browser;
  await signIn(page, base, ADMIN);
  await page.getByRole('navigation').getByRole('link', { name: 'Evals' }).click();

  await page.getByTestId('eval-a').selectOption('ppo');
  await page.getByTestId('eval-b').selectOption('sft');
  await page.getByTestId('eval-labelers').fill('2');
  await page.getByTestId('create-eval').click();
  await page.getByTestId('evals-table').getByText('ppo vs sft').waitFor();
  await page.getByTestId('evals-table').getByText('0 / 4').waitFor();

  // Two held-out labelers per prompt: both prefer ppo on three prompts; on the fourth one calls a tie.
  const admin = new Client(app);
  await admin.login(ADMIN.username, ADMIN.password);
  for (const name of ['judge', 'judge2']) {
    const judge = await labeler(app, admin, name, 'heldout');
    for (;;) {
      const { assignment } = (await judge.post('/api/tasks/next')).json;
      if (!assignment) break;
      const tie = name === 'judge' && assignment.prompt === 'h4';
      const choice = tie ? 'tie' : assignment.a.startsWith('ppo') ? 'a' : 'b';
      assert.equal((await judge.post(`/api/assignments/${assignment.id}/submit`, { choice }, idem())).status, 200);
    }
  }

  await page.reload();
  const row = page.getByTestId('evals-table').getByRole('row').filter({ hasText: 'ppo vs sft' });
  await row.getByText('4 / 4').waitFor();
  // 7.5 of 8: 94 %, with its Wilson interval and the counts; the two agree on 3 of 4 prompts.
  assert.match((await row.textContent()) ?? '', /94%[\s\S]*60% – 99%[\s\S]*7 \/ 1 \/ 0[\s\S]*75%/);
  const elo = await page.getByTestId('elo-table').getByRole('row').allInnerTexts();
  assert.match(elo[1], /^ppo/);
  assert.match(elo[2], /^sft/);
  const figure = page.getByTestId('eval-figure');
  await figure.waitFor();
  await page.waitForFunction(() => {
    const img = document.querySelector<HTMLImageElement>('[data-testid="eval-figure"]');
    return img?.complete && img.naturalWidth > 0;
  });
  await page.screenshot({ path: join(SHOTS, 'admin-evals.png'), fullPage: true });
  assert.deepEqual(problems, []);
});
