// The README's main command at --size tiny, end to end as a child process (as CI and a user run it): it completes,
// prints one JSON line with every field last, writes a self-contained report, SFT beats the base model and PPO-ptx
// beats SFT on held-out phrasings as judged by every held-out labeler pool. A second run reuses every stage.
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

  const share = (x: unknown) => typeof x === 'number' && x >= 0 && x <= 1;
  const pools = Object.keys(summary.winrate_vs_sft_by_pool);
  assert.ok(pools.length >= 3, `held-out pools: ${pools}`);
  for (const m of ['base', 'prompted', 'sft', 'rs', 'ppo', 'ppo_ptx', 'dpo', 'grpo']) {
    const w = summary.winrate_vs_sft[m];
    assert.ok(share(w), `winrate_vs_sft.${m} = ${w}`);
    // The headline is the least pleased pool.
    assert.equal(w, Math.min(...pools.map((p) => summary.winrate_vs_sft_by_pool[p][m])), m);
    for (const split of ['train', 'heldout']) assert.ok(share(summary.correct[m][split]), `correct.${m}.${split}`);
    assert.ok(share(summary.abstain[m]), `abstain.${m}`);
  }
  assert.equal(summary.winrate_vs_sft.sft, 0.5); // SFT against itself: identical answers tie
  // Each model's gain in correctness over SFT on the same prompts, inside its interval.
  assert.equal(summary.correct_vs_sft.sft, undefined);
  for (const m of ['rs', 'ppo_ptx', 'grpo'])
    for (const split of ['train', 'heldout']) {
      const { gain, lo, hi } = summary.correct_vs_sft[m][split];
      assert.ok(Math.abs(gain - (summary.correct[m][split] - summary.correct.sft[split])) < 2e-4, `${m}.${split}`);
      assert.ok(lo <= gain && gain <= hi && lo >= -1 && hi <= 1, `correct_vs_sft.${m}.${split}: ${lo} ${gain} ${hi}`);
    }
  for (const k of [
    'rm_heldout_acc',
    'labeler_agreement',
    'heldout_labeler_agreement',
    'rm_acc_correctness',
    'rm_acc_style',
    'rm_acc_honesty',
  ]) {
    assert.ok(summary[k] > 0 && summary[k] <= 1, `${k} = ${summary[k]}`);
  }
  for (const k of ['ptx_tax', 'ppo_tax', 'wall_s']) assert.ok(Number.isFinite(summary[k]), `${k} = ${summary[k]}`);
  for (const m of ['sft', 'rs', 'ppo', 'ppo_ptx', 'dpo', 'grpo'])
    assert.ok(Number.isFinite(summary.tax_vs_base[m]), `tax_vs_base.${m} = ${summary.tax_vs_base[m]}`);
  // The held-out labelers' pairs by kind: shares add up, and labelers agree most where one answer is right and the
  // other wrong (correctness comes first for every pool).
  const kinds = summary.rm_acc_by_pair_kind;
  const shares = ['right_vs_wrong', 'both_wrong', 'both_right'].map((k) => kinds[k].share);
  assert.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 1) < 1e-3, `pair-kind shares ${shares}`);
  for (const k of ['right_vs_wrong', 'both_wrong'])
    for (const f of ['rm', 'labelers']) assert.ok(share(kinds[k][f]), `rm_acc_by_pair_kind.${k}.${f}`);
  assert.ok(kinds.right_vs_wrong.labelers > kinds.both_wrong.labelers, JSON.stringify(kinds));
  // The reward model tells a plain answer from one padded with a habit every pool dislikes.
  assert.ok(summary.rm_acc_style > 0.8, `rm_acc_style ${summary.rm_acc_style}`);
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
  for (const id of ['summary', 'winrate', 'answers', 'labelers', 'reward-kl', 'tax', 'losses', 'samples'])
    assert.match(html, new RegExp(`<section id="${id}">`), id);
  assert.ok((html.match(/<svg /g) ?? []).length >= 4, 'inline SVG charts');
  assert.match(html, /one answer right, the other wrong/);
  assert.doesNotMatch(html, /<script|src="http/); // self-contained, no script
  for (const png of ['winrate.png', 'reward_kl.png', 'loss_1.png']) {
    const bytes = readFileSync(join(out, 'report', png));
    assert.equal(bytes.subarray(1, 4).toString(), 'PNG', png);
  }
  assert.match(stderr, /\[1\/\d+\] base: running/);
  const ran = [...stderr.matchAll(/\] (\w+): running/g)].map((m) => m[1]).filter((s) => s !== 'report');
  for (const stage of ['base', 'sft', 'samples', 'rm', 'rs', 'ppo', 'ppo_ptx', 'dpo', 'grpo', 'eval'])
    assert.ok(ran.includes(stage), stage);

  // A second run changes nothing, so every training stage comes from the cache.
  const again = demo(out);
  for (const stage of ran) assert.match(again.stderr, new RegExp(`\\] ${stage}: cached`), stage);
  assert.deepEqual(again.summary.winrate_vs_sft, summary.winrate_vs_sft);
});
