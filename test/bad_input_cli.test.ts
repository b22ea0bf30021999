// Issue 14's bad-input list end to end through `instructkit` (a child process, as a user runs it): each is exit
// status 1 with one clear line naming the file, field or module, and nothing is written (a resume refused leaves
// its run folder as it was).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { run as grpoCli } from '../src/cli/commands/grpo.js';
import { spawnCli } from './helpers/cli.js';
import { WORDS, writeJsonl, writeTinyModel } from './helpers/tiny_lm.js';

const root = mkdtempSync(join(tmpdir(), 'ik-bad-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));
const model = writeTinyModel(join(root, 'sft'));
const prompts = writeJsonl(
  join(root, 'prompts.jsonl'),
  WORDS.slice(0, 4).map((w) => ({ prompt: `say ${w}` })),
);
const grpoArgs = (out: string) => [
  ...['--policy', model, '--prompts', prompts, '--out', out, '--steps', '1', '--batch-size', '2'],
  ...['--group-size', '2', '--mini-batch-size', '4', '--max-new-tokens', '4'],
];

// Every file under dir with its size and modification time.
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const path = join(e.parentPath, e.name);
      const st = statSync(path);
      return `${path} ${st.size} ${st.mtimeMs}`;
    })
    .sort();
}

async function refused(args: string[], want: RegExp, out: string): Promise<void> {
  const r = await spawnCli(args);
  assert.equal(r.code, 1, `exit status of ${args[0]}:\n${r.stderr}`);
  assert.match(r.stderr, want);
  assert.match(r.stderr, /^instructkit: /m);
  assert.throws(() => statSync(out), /ENOENT/, `${out} was written`);
}

test('dpo: a pair whose chosen and rejected are the same text names its line', async () => {
  const data = writeJsonl(join(root, 'same.jsonl'), [
    { prompt: 'say red', chosen: 'red', rejected: 'blue' },
    { prompt: 'say red', chosen: 'red red', rejected: 'red red' },
  ]);
  const out = join(root, 'dpo-same');
  await refused(
    ['dpo', '--model', model, '--data', data, '--out', out],
    /same\.jsonl:2: "chosen" and "rejected" are the same text/,
    out,
  );
});

test('rm and dpo: a ranking of one response names its line and field', async () => {
  const data = writeJsonl(join(root, 'one.jsonl'), [{ prompt: 'say red', responses: ['red'], ranking: [0] }]);
  for (const cmd of ['rm', 'dpo']) {
    const out = join(root, `${cmd}-one`);
    await refused(
      [cmd, '--model', model, '--data', data, '--out', out],
      /one\.jsonl:1: "responses" must hold 2\.\.9 items/,
      out,
    );
  }
});

test('grpo: a reward module that throws or returns NaN names the module and the prompt', async () => {
  const throws = join(root, 'throws.mjs');
  writeFileSync(throws, 'export default (p) => { throw new Error("no answer key for " + p); };\n');
  const nan = join(root, 'nan.mjs');
  writeFileSync(nan, 'export default () => Number.NaN;\n');
  const out = join(root, 'grpo-bad');
  await refused(
    ['grpo', ...grpoArgs(out), '--reward-module', throws],
    /throws\.mjs: threw for prompt "say red": no answer key for say red/,
    out,
  );
  await refused(
    ['grpo', ...grpoArgs(out), '--reward-module', nan],
    /nan\.mjs: returned NaN for prompt "say red"; a reward must be a finite number/,
    out,
  );
});

test('a LoRA target that matches nothing names the target and the modules there are', async () => {
  const demos = writeJsonl(join(root, 'demos.jsonl'), [{ prompt: 'say red', completion: 'red' }]);
  for (const cmd of ['sft', 'dpo']) {
    const out = join(root, `${cmd}-lora`);
    const data =
      cmd === 'sft' ? demos : writeJsonl(join(root, 'pairs.jsonl'), [{ prompt: 'a', chosen: 'b', rejected: 'c' }]);
    await refused(
      [cmd, '--model', model, '--data', data, '--out', out, '--lora-r', '4', '--lora-targets', 'q_proj'],
      /lora: target \["q_proj"\] matches no Linear\/Conv1D module; the model has c_attn, c_proj, c_fc/,
      out,
    );
  }
});

test('an adapter folder whose base does not fit names the tensors and the base', async () => {
  const adapter = join(root, 'adapter');
  const verifier = join(root, 'len.mjs');
  writeFileSync(verifier, 'export default (p, c) => c.length;\n');
  assert.equal(
    await grpoCli([...grpoArgs(adapter), '--reward-module', verifier, '--lora-r', '4', '--lora-targets', 'c_attn']),
    0,
  );
  const other = writeTinyModel(join(root, 'other'), { nEmbd: 48 });
  const out = join(root, 'sample-other');
  await refused(
    ['grpo', ...grpoArgs(out), '--reward-module', verifier]
      .map((a) => (a === model ? adapter : a))
      .concat('--base', other),
    /adapter: the adapter does not fit this model, nothing was loaded:[\s\S]*base model: .*other; give the right one with --base/,
    out,
  );
});

test('a resume with a changed config names each changed field and leaves the run as it was', async () => {
  const verifier = join(root, 'len2.mjs');
  writeFileSync(verifier, 'export default (p, c) => c.length;\n');
  const out = join(root, 'grpo-run');
  assert.equal(await grpoCli([...grpoArgs(out), '--reward-module', verifier, '--steps', '2', '--save-every', '1']), 0);
  const before = snapshot(out);
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8');
  const r = await spawnCli([
    'grpo',
    ...grpoArgs(out),
    '--reward-module',
    verifier,
    '--steps',
    '2',
    '--lr',
    '0.5',
    '--resume',
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /--resume: the config differs from .*grpo_config\.json \("lr" \(--lr\): [^ ]+ → 0\.5\); .*--force-config/,
  );
  assert.deepEqual(snapshot(out), before);
  assert.equal(readFileSync(join(out, 'metrics.jsonl'), 'utf8'), metrics);
});
