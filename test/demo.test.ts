// The README's main command at --size tiny, end to end as a child process (as CI and a user run it): it completes,
// prints one JSON line with every field last, writes a self-contained report, SFT beats the base model and PPO-ptx
// beats SFT on held-out prompts as judged by held-out labelers. A second run reuses every stage.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../src/cli/main.js');

function demo(out: string, ...extra: string[]) {
  const r = spawnSync(process.execPath, [MAIN, 'demo', '--size', 'tiny', '--out', out, ...extra], {
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
    timeout: 600_000,
  });
  assert.equal(r.status, 0, `demo failed:\n${r.stderr.slice(-3000)}`);
  const lines = r.stdout.trim().split('\n');
  return { summary: JSON.parse(lines.at(-1)!), stderr: r.stderr };
}

test('demo --size tiny: completes, reports, SFT beats the base model and PPO-ptx beats SFT', {
  timeout: 900_000,
}, (t) => {
  const out = mkdtempSync(join(tmpdir(), 'ik-demo-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const t0 = Date.now();
  const { summary, stderr } = demo(out);
  t.diagnostic(`tiny demo took ${((Date.now() - t0) / 1000).toFixed(0)} s: ${JSON.stringify(summary)}`);

  for (const m of ['base', 'prompted', 'sft', 'ppo', 'ppo_ptx']) {
    const w = summary.winrate_vs_sft[m];
    assert.ok(typeof w === 'number' && w >= 0 && w <= 1, `winrate_vs_sft.${m} = ${w}`);
  }
  assert.equal(summary.winrate_vs_sft.sft, 0.5); // SFT against itself: identical answers tie
  for (const k of ['rm_heldout_acc', 'labeler_agreement']) {
    assert.ok(summary[k] > 0 && summary[k] <= 1, `${k} = ${summary[k]}`);
  }
  for (const k of ['ptx_tax', 'ppo_tax', 'wall_s']) assert.ok(Number.isFinite(summary[k]), `${k} = ${summary[k]}`);
  assert.ok(
    summary.winrate_vs_sft.base < 0.5,
    `SFT should beat the base model: base wins ${summary.winrate_vs_sft.base}`,
  );
  // RLHF works in miniature: PPO-ptx drops the demonstrators' habits that SFT imitated, and beats SFT.
  const { eval: ev } = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  assert.ok(
    ev.stats.ppo_ptx.habits < ev.stats.sft.habits,
    `habits: SFT ${ev.stats.sft.habits}, PPO-ptx ${ev.stats.ppo_ptx.habits}`,
  );
  assert.ok(summary.winrate_vs_sft.ppo_ptx > 0.5, `PPO-ptx wins ${summary.winrate_vs_sft.ppo_ptx} against SFT`);

  // The labels went through the store and the trainers read its exports.
  assert.ok(existsSync(join(out, 'labels.sqlite')));
  for (const f of ['demonstrations.jsonl', 'rankings.jsonl', 'rankings_heldout.jsonl'])
    assert.ok(
      readFileSync(join(out, 'data', f), 'utf8')
        .trim()
        .split('\n').length > 10,
      f,
    );

  const html = readFileSync(join(out, 'report', 'index.html'), 'utf8');
  for (const id of ['summary', 'winrate', 'labelers', 'reward-kl', 'tax', 'losses', 'samples'])
    assert.match(html, new RegExp(`<section id="${id}">`), id);
  assert.ok((html.match(/<svg /g) ?? []).length >= 4, 'inline SVG charts');
  assert.doesNotMatch(html, /<script|src="http/); // self-contained, no script
  for (const png of ['winrate.png', 'reward_kl.png', 'loss_1.png']) {
    const bytes = readFileSync(join(out, 'report', png));
    assert.equal(bytes.subarray(1, 4).toString(), 'PNG', png);
  }
  assert.match(stderr, /\[1\/8\] base: running/);

  // A second run changes nothing, so every training stage comes from the cache.
  const again = demo(out);
  for (const stage of ['base', 'sft', 'samples', 'rm', 'ppo', 'ppo_ptx', 'eval'])
    assert.match(again.stderr, new RegExp(`\\] ${stage}: cached`), stage);
  assert.deepEqual(again.summary.winrate_vs_sft, summary.winrate_vs_sft);
});
