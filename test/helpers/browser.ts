// What the browser tests share: Debian's Chromium, driven headless through playwright-core against the built UI; the
// skip reason when it is missing (never in CI); a page that records what would mean a broken screen.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
export const WEB = join(ROOT, 'web/dist');
export const SHOTS = join(ROOT, 'test-output/screens');
export const ADMIN = { username: 'admin', password: 'admin-password' };

/** The tests' `skip` option: a message when chromium is missing outside CI; in CI they must run. */
export const chromiumSkip: string | false =
  !existsSync(CHROMIUM) && !process.env.CI
    ? `${CHROMIUM} not found: install it with apt-get install -y chromium (scripts/setup.sh does); required in CI`
    : false;

export interface BrowserPage {
  ctx: BrowserContext;
  page: Page;
  /** Page errors and dialogs seen so far (an alert() would mean user text ran as script): tests end expecting none. */
  problems: string[];
}

/** Headless Chromium on its own profile folder with one page; web/dist must be built. */
export async function openBrowser(
  profile: string,
  opts: { height?: number; timeoutMs?: number; acceptDownloads?: boolean } = {},
): Promise<BrowserPage> {
  assert.ok(existsSync(join(WEB, 'index.html')), 'web/dist is missing: run npm run build:web');
  mkdirSync(SHOTS, { recursive: true });
  const { chromium } = await import('playwright-core');
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: opts.height ?? 1000 },
    acceptDownloads: opts.acceptDownloads ?? false,
  });
  ctx.setDefaultTimeout(opts.timeoutMs ?? 15_000);
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  return { ctx, page, problems };
}

/** Signs in through the login screen. */
export async function signIn(page: Page, base: string, user: { username: string; password: string }): Promise<void> {
  await page.goto(`${base}/login`);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
