// The one training loop and its config base: the guards every trainer gets from it (an earlier run's folder, a
// changed config on --resume, the temporary folders of killed saves), and the input checks of training text.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { loadPretrained } from '../src/models/index.js';
import { readHeader } from '../src/models/safetensors.js';
import { Linear } from '../src/nn/index.js';
import { readDemonstrations } from '../src/rlhf/data.js';
import { ppoSpec } from '../src/rlhf/ppo.js';
import { rmSpec } from '../src/rlhf/reward.js';
import { sftDefaults, sftSpec, trainSft } from '../src/rlhf/sft.js';
import { Rng, scale, sum, tensor } from '../src/tensor/index.js';
import { Tokenizer } from '../src/tokenizer/index.js';
import { cleanStaleCheckpoints } from '../src/train/checkpoint.js';
import { diffConfigs } from '../src/train/config.js';
import { runTrainer, type Trainer } from '../src/train/loop.js';
import { MetricsFollower, MetricsLog, readMetrics } from '../src/train/metrics.js';
import { pretrainSpec } from '../src/train/pretrain.js';
import { corpusTokens, readDocuments } from '../src/train/tokens.js';
import { assertSameRun, spawnCli } from './helpers/cli.js';
import { relativeError } from './helpers/gradcheck.js';
import { WORDS, writeJsonl, writeTinyModel } from './helpers/tiny_lm.js';

const root = mkdtempSync(join(tmpdir(), 'ik-loop-'));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = writeTinyModel(join(root, 'base'));
const quiet = () => {};
const demos = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ prompt: `say ${WORDS[i % 8]}`, completion: `${WORDS[(i + 1) % 8]}` }));
const data = writeJsonl(join(root, 'demos.jsonl'), demos(12));
const rankings = writeJsonl(
  join(root, 'rankings.jsonl'),
  Array.from({ length: 12 }, (_, i) => ({ prompt: `say ${WORDS[i % 8]}`, chosen: WORDS[i % 8], rejected: 'no' })),
);
const tiny = { ...sftDefaults, epochs: 2, batchSize: 4, lr: 3e-3, dropout: 0, saveEvery: 1 };

// A PID that ran and is gone.
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

test('sft and rm refuse an earlier run folder before writing anything', async () => {
  for (const stage of ['sft', 'rm'] as const) {
    const out = join(root, `used-${stage}`);
    mkdirSync(join(out, 'checkpoints', 'step-00000001'), { recursive: true });
    writeFileSync(join(out, 'checkpoints', 'step-00000001', 'trainer_state.json'), '{"step": 1}');
    const cfg = join(out, `${stage}_config.json`);
    writeFileSync(cfg, '{"earlier": "run"}\n');
    const before = readdirSync(out).sort();
    const file = stage === 'sft' ? data : rankings;
    const run = await spawnCli([stage, '--model', modelDir, '--data', file, '--out', out]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /holds checkpoints of an earlier run; pass --resume/);
    assert.equal(readFileSync(cfg, 'utf8'), '{"earlier": "run"}\n', `${stage} rewrote ${cfg}`);
    assert.deepEqual(readdirSync(out).sort(), before);
  }
});

// An SFT run in `out` stopped after its second step, with a checkpoint to resume from.
function stopAtStep2(out: string): void {
  const stop = new AbortController();
  trainSft({
    modelDir,
    dataFile: data,
    outDir: out,
    config: tiny,
    log: quiet,
    quiet: true,
    signal: stop.signal,
    onStep: (step) => step === 2 && stop.abort(),
  });
}

test('--resume with a changed batch size or lr is refused naming each field; --force-config goes on', () => {
  const out = join(root, 'guard');
  const run = (config: typeof tiny, extra: { resume?: boolean; forceConfig?: boolean } = {}) =>
    trainSft({ modelDir, dataFile: data, outDir: out, config, log: quiet, quiet: true, ...extra });
  stopAtStep2(out);
  assert.throws(
    () => run({ ...tiny, batchSize: 2, lr: 1e-3 }, { resume: true }),
    (e: Error) =>
      /--resume: the config differs from .*sft_config\.json/.test(e.message) &&
      /"batchSize" \(--batch-size\): 4 → 2/.test(e.message) &&
      /"lr" \(--lr\): 0\.003 → 0\.001/.test(e.message) &&
      /--force-config/.test(e.message),
  );
  assert.throws(() => run({ ...tiny, epochs: 3 }, { resume: true }), /"epochs" \(--epochs\): 2 → 3/);
  const lines: string[] = [];
  const r = trainSft({
    modelDir,
    dataFile: data,
    outDir: out,
    config: { ...tiny, lr: 1e-3 },
    log: (l) => lines.push(l),
    quiet: true,
    resume: true,
    forceConfig: true,
  });
  assert.equal(r.aborted, false);
  assert.ok(lines.some((l) => /--force-config: resuming with a config that differs/.test(l)));
});

test('--resume of a run saved before a field existed: unchanged at its default, refused naming it otherwise', () => {
  const out = join(root, 'older');
  stopAtStep2(out);
  // As an SFT run saved before the pretraining mix existed: no ptx fields, no ptx input.
  const path = join(out, 'sft_config.json');
  const saved = JSON.parse(readFileSync(path, 'utf8'));
  for (const field of ['ptxCoef', 'ptxBatchSize', 'ptxSeqLen', 'ptx']) {
    assert.ok(field in saved, field);
    delete saved[field];
  }
  writeFileSync(path, JSON.stringify(saved));
  const corpus = join(root, 'older-corpus.txt');
  writeFileSync(corpus, WORDS.join(' ').repeat(8));
  const resume = (config: typeof tiny, extra: { ptxFiles?: string[] } = {}, log: (line: string) => void = quiet) =>
    trainSft({ modelDir, dataFile: data, outDir: out, config, log, quiet: true, resume: true, ...extra });
  assert.throws(
    () => resume({ ...tiny, ptxCoef: 0.5 }, { ptxFiles: [corpus] }),
    (e: Error) =>
      /"ptxCoef" \(--ptx-coef\): nothing → 0\.5/.test(e.message) &&
      /"ptx" \(--ptx\): nothing → \[/.test(e.message) &&
      !/ptxBatchSize|ptxSeqLen/.test(e.message),
  );
  const lines: string[] = [];
  const r = resume(tiny, {}, (l) => lines.push(l));
  assert.equal(r.aborted, false);
  assert.ok(!lines.some((l) => /--force-config/.test(l)), lines.join('\n'));
});

test('temporary folders of killed saves are removed when their process is gone', () => {
  const ckpts = join(root, 'stale', 'checkpoints');
  const dead = join(ckpts, `step-00000004.tmp-${deadPid()}`);
  const live = join(ckpts, `step-00000004.tmp-${process.ppid}`);
  for (const d of [dead, live]) mkdirSync(d, { recursive: true });
  assert.deepEqual(cleanStaleCheckpoints(ckpts), [dead.split('/').at(-1)]);
  assert.ok(!existsSync(dead));
  assert.ok(existsSync(live), 'a save still running elsewhere is left alone');
  // A trainer cleans its folder at the start of a run.
  const out = join(root, 'stale-run');
  const leftover = join(out, 'checkpoints', `step-00000002.tmp-${deadPid()}`);
  mkdirSync(leftover, { recursive: true });
  trainSft({ modelDir, dataFile: data, outDir: out, config: { ...tiny, epochs: 1 }, log: quiet, quiet: true });
  assert.ok(!existsSync(leftover));
});

test('training text that is not UTF-8 is an error naming file, line and byte offset', () => {
  const bad = join(root, 'latin1.jsonl');
  writeFileSync(
    bad,
    Buffer.concat([
      Buffer.from('{"prompt": "a", "completion": "b"}\n{"prompt": "caf'),
      Buffer.from([0xe9]),
      Buffer.from('", "completion": "x"}\n'),
    ]),
  );
  assert.throws(() => readDemonstrations(bad), /latin1\.jsonl:2: byte 0xe9 at offset 50 is not valid UTF-8/);
  // A corpus read in small chunks, the bad byte far from the start; a character cut by a chunk's end is fine.
  const corpus = join(root, 'corpus.txt');
  const good = `${'héllo wörld\n'.repeat(40)}\n`;
  writeFileSync(corpus, Buffer.concat([Buffer.from(good), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]));
  const offset = Buffer.byteLength(good);
  assert.throws(
    () => [...readDocuments([corpus], { chunkBytes: 7 })],
    new RegExp(`corpus\\.txt:42: byte 0xc3 at offset ${offset} is not valid UTF-8`),
  );
  writeFileSync(corpus, good);
  assert.equal([...readDocuments([corpus], { chunkBytes: 7 })][0].text, good.trim());
});

test('--ptx reads a .jsonl corpus as pretraining does: the texts and EOS, no JSON syntax', () => {
  const tok = Tokenizer.fromDir(modelDir);
  const texts = ['say red then blue please.', 'say gold then pink please.'];
  const file = writeJsonl(
    join(root, 'ptx.jsonl'),
    texts.map((text) => ({ text })),
  );
  const ids = corpusTokens([file], tok);
  const want = texts.flatMap((t) => [...tok.encode(t, { addSpecialTokens: false }), tok.eosId!]);
  assert.deepEqual(ids, want);
  assert.ok(!tok.decode(ids).includes('"text"'));
});

test('one config base: the same names in every stage, and --help and flags from the schema', () => {
  const shared = [
    'batchSize',
    'lr',
    'lrScheduler',
    'warmupRatio',
    'minLrRatio',
    'maxGradNorm',
    'saveEvery',
    'seed',
    'bf16',
  ];
  for (const spec of [pretrainSpec, sftSpec, rmSpec, ppoSpec]) {
    for (const k of shared) assert.ok(k in spec.defaults, `${spec.stage}: ${k}`);
    const help = spec.help();
    for (const k of Object.keys(spec.defaults))
      assert.ok(
        new RegExp(`--(\\[no-\\])?${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}\\b`).test(help),
        `${spec.stage} --help lacks ${k}`,
      );
  }
  for (const old of ['batch', 'gradClip', 'minLr', 'checkpointEvery', 'chatTemplate'])
    for (const spec of [pretrainSpec, sftSpec, rmSpec, ppoSpec])
      assert.ok(!(old in spec.defaults), `${spec.stage}: ${old}`);
  assert.deepEqual(sftSpec.fromFlags({ 'batch-size': '4', bf16: true, dropout: 'null', 'prompt-format': 'raw' }), {
    batchSize: 4,
    bf16: true,
    dropout: null,
    promptFormat: 'raw',
  });
  assert.deepEqual(ppoSpec.fromFlags({ 'no-whiten-advantages': true }), { whitenAdvantages: false });
  assert.throws(() => sftSpec.fromFlags({ 'batch-size': '2.5' }), /--batch-size: expected an integer, got "2.5"/);
  assert.throws(
    () => sftSpec.resolve([{ values: { lr: -1 }, source: 'x.yaml' }]),
    /x\.yaml: field "lr" \(--lr\) must be a number in \[0, 10\]/,
  );
  assert.throws(() => sftSpec.resolve([{ values: { batch: 4 }, source: 'x.yaml' }]), /x\.yaml: unknown field "batch"/);
});

test('--bf16 autocast reaches every trainer through the loop (sft here): finite losses, not the f32 ones', () => {
  const losses = (bf16: boolean) => {
    const out: number[] = [];
    trainSft({
      modelDir,
      dataFile: data,
      outDir: join(root, `bf16-${bf16}`),
      config: { ...tiny, epochs: 1, saveEvery: 0, bf16 },
      log: quiet,
      quiet: true,
      onStep: (_, m) => out.push(Number(m['train/loss'])),
    });
    return out;
  };
  const f32 = losses(false);
  const bf16 = losses(true);
  assert.ok(bf16.every(Number.isFinite));
  assert.notDeepEqual(bf16, f32);
  assert.ok(Math.abs(bf16[0] - f32[0]) < 0.05, `first loss ${bf16[0]} vs ${f32[0]}`);
});

test('--save-dtype bf16 writes the trained model in bf16 (checkpoints stay f32) and it loads back as the f32 save', () => {
  const save = (saveDtype: 'f32' | 'bf16') => {
    const outDir = join(root, `save-${saveDtype}`);
    trainSft({ modelDir, dataFile: data, outDir, config: { ...tiny, epochs: 1, saveDtype }, log: quiet, quiet: true });
    return outDir;
  };
  const [f32Dir, bf16Dir] = [save('f32'), save('bf16')];
  const dtypes = (file: string) => new Set([...readHeader(file).entries.values()].map((e) => e.dtype));
  assert.deepEqual(dtypes(join(bf16Dir, 'model.safetensors')), new Set(['BF16']));
  assert.deepEqual(dtypes(join(f32Dir, 'model.safetensors')), new Set(['F32']));
  const checkpoints = join(bf16Dir, 'checkpoints');
  for (const step of readdirSync(checkpoints))
    for (const f of readdirSync(join(checkpoints, step)).filter((n) => n.endsWith('.safetensors')))
      assert.deepEqual(dtypes(join(checkpoints, step, f)), new Set(['F32']), `${step}/${f}`);
  const ids = tensor([1, 2, 3, 4, 5, 6], [1, 6], 'i32');
  const logits = (dir: string) => loadPretrained(dir).forward(ids).toArray();
  assert.ok(relativeError(logits(bf16Dir), logits(f32Dir)) < 2e-2);
});

test('a non-finite gradient stops the run naming the step and the part, the last checkpoint intact', () => {
  const lin = new Linear(1, 1, new Rng(0), { std: 0.001 });
  const toy: Trainer<number> = {
    stage: 'toy',
    parts: [{ name: 'model', module: lin, lr: 0.1, gradNormMetric: 'train/grad_norm' }],
    rngs: {},
    totalSteps: 4,
    totalUpdates: 4,
    *updates(step) {
      yield [step];
    },
    // Finite until step 3, whose loss is finite (about 1e36) but whose weight gradient (1e39) overflows f32.
    step: (step) => ({
      loss: scale(sum(lin.forward(tensor([step === 3 ? 1e19 : 1], [1, 1]))), step === 3 ? 1e20 : 1),
    }),
  };
  const outDir = join(root, 'toy');
  const config = { ...sftDefaults, saveEvery: 1 };
  assert.throws(
    () => runTrainer(toy, false, { outDir, config, quiet: true, log: quiet }),
    /toy step 3: the gradient norm of model is (NaN|Infinity); lower --lr or set maxGradNorm/,
  );
  assert.deepEqual(readdirSync(join(outDir, 'checkpoints')), ['step-00000001', 'step-00000002']);
});

test('SIGTERM: the run writes a checkpoint and stops; --resume finishes it as if never stopped', async () => {
  const big = writeJsonl(join(root, 'demos-sig.jsonl'), demos(40));
  const args = (out: string) => ['sft', '--model', modelDir, '--data', big, '--out', out, '--epochs', '3'];
  const stopped = join(root, 'sig');
  const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'src', 'cli', 'main.js'), ...args(stopped)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, INSTRUCTKIT_THREADS: '1' },
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    // The first progress line means training runs.
    if (/sft \d+\/\d+/.test(stderr) && !child.killed) child.kill('SIGTERM');
  });
  const code = await new Promise<number | null>((done) => child.on('close', done));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /SIGTERM: stopping after step \d+ \(writing a checkpoint/);
  const at = readdirSync(join(stopped, 'checkpoints'));
  assert.equal(at.length > 0, true, 'a checkpoint was written');
  const resumed = await spawnCli([...args(stopped), '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const straight = join(root, 'sig-straight');
  assert.equal((await spawnCli(args(straight))).code, 0);
  assertSameRun(stopped, straight);
});

test('metrics.jsonl followed as it grows: new lines only, a line read once whole, from the start after a rewrite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-follow-'));
  const path = join(dir, 'metrics.jsonl');
  const follower = new MetricsFollower(path);
  assert.deepEqual(follower.read(), [], 'no file yet');
  const log = new MetricsLog(path, 'sft');
  for (let step = 1; step <= 3; step++) log.write(step, { 'train/loss': 1 / step, note: 'é' });
  assert.deepEqual(
    follower.read().map((r) => r.step),
    [1, 2, 3],
  );
  appendFileSync(path, '{"step": 4, "stage": "sft", "no');
  assert.deepEqual(
    follower.read().map((r) => r.step),
    [1, 2, 3],
    'a line still being written waits',
  );
  appendFileSync(path, 'te": "ü"}\n');
  assert.deepEqual(
    follower.read().map((r) => r.step),
    [1, 2, 3, 4],
  );
  assert.deepEqual(follower.read(), readMetrics(path), 'the same records as reading the file whole');
  log.truncateFrom(3); // a resume from step 2's checkpoint rewrites the file
  log.write(3, { 'train/loss': 0.2 });
  assert.deepEqual(
    follower.read().map((r) => [r.step, r['train/loss']]),
    [
      [1, 1],
      [2, 0.5],
      [3, 0.2],
    ],
  );
  rmSync(dir, { recursive: true });
});

test('--resume: a path saved absolute and given relative (or the reverse) names the same file; another file is refused', () => {
  const here = (p: string) => resolve(p);
  assert.deepEqual(diffConfigs({ data: here('job-3/data.jsonl') }, { data: 'job-3/data.jsonl' }, []), []);
  assert.deepEqual(diffConfigs({ ptx: ['a.txt', here('b.txt')] }, { ptx: [here('a.txt'), './b.txt'] }, []), []);
  assert.deepEqual(diffConfigs({ model: 'job-1/model' }, { model: 'job-1/model' }, []), [], 'the same words');
  const moved = diffConfigs({ data: here('job-3/data.jsonl') }, { data: 'job-4/data.jsonl' }, []);
  assert.deepEqual(
    moved.map((d) => d.field),
    ['"data" (--data)'],
  );
  assert.equal(diffConfigs({ ptx: ['a.txt'] }, { ptx: ['a.txt', 'b.txt'] }, []).length, 1);
  assert.equal(diffConfigs({ promptFormat: 'chat' }, { promptFormat: 'plain' }, []).length, 1);
});
