import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { run as runSftCommand } from '../src/cli/commands/sft.js';
import { loadPretrained, ScalarModel, saveScalarPretrained } from '../src/models/index.js';
import {
  encodeDemonstrations,
  loadCausalLM,
  readDemonstrations,
  type SftConfig,
  sftBatch,
  sftDefaults,
  sftLoss,
  trainSft,
} from '../src/rlhf/index.js';
import { formatLineError, parseJsonl } from '../src/store/jsonl.js';
import { crossEntropy, noGrad, Rng, randn, reshape, Tensor, tidy } from '../src/tensor/index.js';
import { Formatter } from '../src/tokenizer/index.js';
import { LmWindows } from '../src/train/batches.js';
import { readMetrics } from '../src/train/metrics.js';
import { assertSameRun, metricsWithoutTime } from './helpers/cli.js';
import { WORDS, writeJsonl, writeTinyModel } from './helpers/tiny_lm.js';

const root = mkdtempSync(join(tmpdir(), 'ik-sft-'));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = writeTinyModel(join(root, 'base'));
const quiet = () => {};

// Completions follow a rule (the word after "say", twice), so a model can learn them.
function demos(n: number, offset = 0) {
  return Array.from({ length: n }, (_, i) => {
    const w = WORDS[(i + offset) % WORDS.length];
    return { prompt: `say ${w}`, completion: `${w} ${w}` };
  });
}

const tiny: SftConfig = {
  ...sftDefaults,
  epochs: 2,
  batchSize: 4,
  lr: 3e-3,
  warmupRatio: 0,
  dropout: 0,
  valFraction: 0.25,
  evalMaxNewTokens: 6,
};

function logSoftmax64(row: ArrayLike<number>): number[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - max);
  const lse = max + Math.log(s);
  return Array.from(row, (v) => v - lse);
}

test('SFT loss covers response tokens only: equals a float64 hand computation, padding-independent', () => {
  const { model, tokenizer } = loadCausalLM(modelDir, { residPdrop: 0 });
  model.eval();
  const fmt = new Formatter(tokenizer, modelDir);
  const file = writeJsonl(join(root, 'mask.jsonl'), [
    { prompt: 'say red', completion: 'red red' },
    {
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'say blue please' },
        { role: 'assistant', content: 'blue' },
      ],
    },
  ]);
  const examples = encodeDemonstrations(readDemonstrations(file).records, fmt, model.maxPositions).records;
  // The store keeps one prompt and one completion: it still refuses conversations the trainer accepts.
  const stored = parseJsonl('demonstrations', readFileSync(file, 'utf8'), { maxTextChars: 100 }, 'mask.jsonl');
  assert.deepEqual(stored.errors.map(formatLineError), [
    'mask.jsonl:2: only one user turn and one assistant turn can be imported here (no system or earlier turns)',
  ]);
  // The prompt is the chat template's rendering with a generation prompt; the response ends with EOS.
  const rendered = tokenizer.decode(examples[0].ids.slice(0, examples[0].promptLength));
  assert.equal(rendered, '<|user|>\nsay red<|end|>\n<|assistant|>\n');
  assert.equal(
    tokenizer.decode(examples[1].ids.slice(0, examples[1].promptLength)).startsWith('<|system|>\nbe brief'),
    true,
  );
  assert.equal(examples[0].ids.at(-1), tokenizer.eosId);

  const batch = sftBatch(examples, fmt.padId);
  const T = batch.ids.shape[1];
  examples.forEach((e, b) => {
    for (let t = 0; t < T; t++) {
      const target = batch.targets.i32[b * T + t];
      const isResponse = t + 1 >= e.promptLength && t + 1 < e.ids.length;
      assert.equal(target, isResponse ? e.ids[t + 1] : -100, `row ${b} position ${t}`);
    }
  });

  // Hand computation: each example run alone (no padding), −log p of its response tokens, averaged over all.
  let total = 0;
  let count = 0;
  for (const e of examples) {
    const logits = noGrad(() =>
      tidy(() => model.forward(Tensor.fromBuffer(Int32Array.from(e.ids), [1, e.ids.length])).toArray()),
    );
    const V = logits.length / e.ids.length;
    for (let t = e.promptLength - 1; t < e.ids.length - 1; t++) {
      total -= logSoftmax64(logits.slice(t * V, (t + 1) * V))[e.ids[t + 1]];
      count++;
    }
  }
  const expected = total / count;
  for (const padId of [fmt.padId, 7]) {
    const got = noGrad(() => tidy(() => sftLoss(model, examples, padId).item()));
    assert.ok(Math.abs(got - expected) < 1e-4, `pad ${padId}: ${got} vs ${expected}`);
  }
  // Whatever the model predicts at prompt and padding positions, the loss is the same.
  tidy(() => {
    const logits = noGrad(() => model.forward(batch.ids, { attentionMask: batch.mask }));
    const V = logits.shape[2];
    const loss = () =>
      crossEntropy(reshape(logits, [examples.length * T, V]), reshape(batch.targets, [examples.length * T])).item();
    const before = loss();
    const rng = new Rng(9);
    for (let r = 0; r < examples.length * T; r++)
      if (batch.targets.i32[r] === -100) for (let v = 0; v < V; v++) logits.f32[r * V + v] = 10 * rng.normal();
    assert.equal(loss(), before);
    assert.ok(Math.abs(before - expected) < 1e-4);
  });
});

test('SFT: validation loss decreases; the folder loads back; metrics carry train/loss, eval/loss, lr', () => {
  const data = writeJsonl(join(root, 'demos.jsonl'), demos(24));
  const val = writeJsonl(join(root, 'val.jsonl'), demos(8, 3));
  const out = join(root, 'run-val');
  const r = trainSft({
    modelDir,
    dataFile: data,
    valFile: val,
    outDir: out,
    config: { ...tiny, epochs: 3 },
    log: quiet,
  });
  assert.equal(r.aborted, false);
  assert.equal(r.selectedBy, 'eval/loss');
  const metrics = readMetrics(join(out, 'metrics.jsonl'));
  const valLoss = metrics.filter((m) => 'eval/loss' in m).map((m) => Number(m['eval/loss']));
  assert.equal(valLoss.length, 3);
  assert.ok(valLoss[2] < valLoss[0] - 0.5, `val loss ${valLoss}`);
  assert.ok(metrics.filter((m) => 'train/loss' in m && 'lr' in m).length === r.steps);
  assert.equal(r.bestEpoch, valLoss.indexOf(Math.min(...valLoss)));
  const saved = loadPretrained(out);
  assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).resid_pdrop, 0);
  assert.ok(saved.maxPositions === 48);
  assert.ok(readFileSync(join(out, 'tokenizer.json'), 'utf8').length > 0);
});

test('SFT resumes exactly: abort after 5 steps, resume, same metrics and weights as an uninterrupted run', () => {
  const data = writeJsonl(join(root, 'demos-resume.jsonl'), demos(16));
  const config = { ...tiny, epochs: 2, saveEvery: 2, dropout: 0.1 };
  const full = join(root, 'run-full');
  const a = trainSft({ modelDir, dataFile: data, outDir: full, config, log: quiet });
  assert.equal(a.steps, 6);

  const cut = join(root, 'run-cut');
  const ac = new AbortController();
  const b1 = trainSft({
    modelDir,
    dataFile: data,
    outDir: cut,
    config,
    log: quiet,
    signal: ac.signal,
    onStep: (step) => {
      if (step === 5) ac.abort();
    },
  });
  assert.deepEqual([b1.aborted, b1.steps], [true, 5]);
  assert.throws(() => trainSft({ modelDir, dataFile: data, outDir: cut, config, log: quiet }), /--resume/);
  const b2 = trainSft({ modelDir, dataFile: data, outDir: cut, config, log: quiet, resume: true });
  assert.deepEqual([b2.aborted, b2.steps], [false, 6]);

  const strip = (dir: string) => metricsWithoutTime(dir);
  assert.deepEqual(strip(cut), strip(full));
  assert.deepEqual(readFileSync(join(cut, 'model.safetensors')), readFileSync(join(full, 'model.safetensors')));
});

test('SFT with --reward-model keeps the epoch whose greedy validation samples the reward model scores highest', () => {
  const rmDir = join(root, 'rm-random');
  const { model, tokenizer } = loadCausalLM(modelDir);
  const rm = new ScalarModel(model, new Rng(5));
  rm.score.weight.f32.set(randn(rm.score.weight.shape, new Rng(6)).f32);
  saveScalarPretrained(rm, rmDir);
  tokenizer.save(rmDir);
  const data = writeJsonl(join(root, 'demos-rm.jsonl'), demos(12));
  const out = join(root, 'run-rm');
  const r = trainSft({
    modelDir,
    dataFile: data,
    outDir: out,
    rewardModelDir: rmDir,
    config: { ...tiny, epochs: 3 },
    log: quiet,
  });
  assert.equal(r.selectedBy, 'eval/rm_score');
  const scores = readMetrics(join(out, 'metrics.jsonl'))
    .filter((m) => 'eval/rm_score' in m)
    .map((m) => Number(m['eval/rm_score']));
  assert.equal(scores.length, 3);
  assert.equal(r.bestEpoch, scores.indexOf(Math.max(...scores)));
  assert.equal(r.bestValue, Math.max(...scores));
});

test('sft command: flags override the config file; a run writes a Hugging Face folder', async () => {
  const data = writeJsonl(join(root, 'demos-cli.jsonl'), demos(8));
  const cfg = join(root, 'sft.json');
  writeJsonl(cfg, [{ lr: 0.003, batchSize: 4, dropout: 0 }]);
  const out = join(root, 'run-cli');
  const log = console.log;
  const err = console.error;
  console.log = quiet;
  console.error = quiet;
  try {
    assert.equal(
      await runSftCommand(['--model', modelDir, '--data', data, '--out', out, '--config', cfg, '--epochs', '1']),
      0,
    );
  } finally {
    console.log = log;
    console.error = err;
  }
  const saved = JSON.parse(readFileSync(join(out, 'sft_config.json'), 'utf8'));
  assert.deepEqual([saved.epochs, saved.lr, saved.batchSize], [1, 0.003, 4]);
  loadPretrained(out);
  await assert.rejects(
    runSftCommand(['--model', modelDir, '--data', data, '--out', out, '--epochs', 'two']),
    /--epochs: expected an integer/,
  );
});

test('SFT bad input fails before training with file:line or file and field', () => {
  const run = (dataFile: string, extra: Partial<Parameters<typeof trainSft>[0]> = {}) =>
    trainSft({ modelDir, dataFile, outDir: join(root, 'bad-out'), config: tiny, log: quiet, ...extra });
  const bad = writeJsonl(join(root, 'bad.jsonl'), [
    ...demos(4),
    '{"prompt": "x", "completion"',
    { prompt: 'x' },
    {
      messages: [
        { role: 'assistant', content: 'hi' },
        { role: 'user', content: 'x' },
      ],
    },
  ]);
  assert.throws(
    () => run(bad),
    (e: Error) => {
      assert.match(e.message, /bad\.jsonl:5: invalid JSON/);
      assert.match(e.message, /bad\.jsonl:6: "completion" must be a string/);
      assert.match(e.message, /bad\.jsonl:7: "messages\[0\]\.role" must be "user"/);
      return true;
    },
  );
  const lines: string[] = [];
  const skipped = trainSft({
    modelDir,
    dataFile: bad,
    outDir: join(root, 'skip-out'),
    config: { ...tiny, epochs: 1 },
    log: (l) => lines.push(l),
    skipBad: true,
  });
  assert.equal(skipped.skipped.length, 3);
  assert.ok(lines.includes('skipped 3 bad line(s)'));

  const long = writeJsonl(join(root, 'long.jsonl'), [...demos(2), { prompt: 'say', completion: 'red '.repeat(60) }]);
  assert.throws(
    () => run(long),
    /long\.jsonl:3: prompt \+ completion is \d+ tokens, longer than the model context of 48/,
  );
  const empty = writeJsonl(join(root, 'empty.jsonl'), ['', '  ']);
  assert.throws(() => run(empty), /empty\.jsonl: no usable records \(empty dataset\)/);
  assert.throws(() => run(join(root, 'missing.jsonl')), /missing\.jsonl: file not found/);

  // Folders of the wrong kind: a reward model, a folder without config.json, a config without model_type.
  const rmDir = join(root, 'rm-folder');
  const { model, tokenizer } = loadCausalLM(modelDir);
  saveScalarPretrained(new ScalarModel(model), rmDir);
  tokenizer.save(rmDir);
  const good = writeJsonl(join(root, 'good.jsonl'), demos(4));
  assert.throws(
    () => run(good, { modelDir: rmDir }),
    /rm-folder\/config\.json: field "architectures" .*reward\/value model/,
  );
  assert.throws(
    () => run(good, { rewardModelDir: modelDir }),
    /base\/config\.json: field "architectures" .*not a reward model/,
  );
  const empty2 = join(root, 'not-a-model');
  mkdirSync(empty2);
  assert.throws(
    () => run(good, { modelDir: empty2 }),
    /not-a-model\/config\.json: file not found; .* is not a model folder/,
  );
  writeJsonl(join(empty2, 'config.json'), [{ vocab_size: 3 }]);
  assert.throws(() => run(good, { modelDir: empty2 }), /not-a-model\/config\.json: field "model_type" is missing/);
  assert.throws(
    () => run(good, { config: { ...tiny, epochs: 0 } }),
    /field "epochs" \(--epochs\) must be an integer >= 1/,
  );
  // A tokenizer with more ids than the model's embedding.
  const small = join(root, 'small-vocab');
  cpSync(join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'llama-tiny'), small, { recursive: true });
  tokenizer.save(small);
  assert.throws(
    () => run(good, { modelDir: small }),
    /small-vocab\/tokenizer\.json: \d+ token ids, but field "vocab_size" of .*config\.json is 64/,
  );
});

test('SFT with a pretraining mix (--ptx, ptxCoef): lower LM loss on held-out corpus text than without; exact resume; mismatched flags refused', async () => {
  // Prose of the tiny world, and held-out prose of the same kind (other word pairs).
  const prose = (n: number, k: number) =>
    Array.from({ length: n }, (_, i) => `say ${WORDS[i % 8]} then ${WORDS[(i * k + 1) % 8]} please.`).join(' ');
  const corpus = join(root, 'corpus.txt');
  writeFileSync(corpus, prose(64, 3));
  const data = writeJsonl(join(root, 'demos-ptx.jsonl'), demos(16));
  const config = { ...tiny, epochs: 3, valFraction: 0, ptxSeqLen: 16, ptxBatchSize: 2 };
  const plain = join(root, 'ptx-off');
  const mixed = join(root, 'ptx-on');
  trainSft({ modelDir, dataFile: data, outDir: plain, config, log: quiet });
  trainSft({
    modelDir,
    dataFile: data,
    outDir: mixed,
    config: { ...config, ptxCoef: 1 },
    ptxFiles: [corpus],
    log: quiet,
  });
  const m = readMetrics(join(mixed, 'metrics.jsonl'));
  assert.ok(
    m.every((r) => Number.isFinite(Number(r['ptx/loss']))),
    'ptx/loss logged at every step',
  );
  assert.ok(readMetrics(join(plain, 'metrics.jsonl')).every((r) => !('ptx/loss' in r)));

  // Held-out prose: next-token loss of each saved model.
  const { tokenizer } = loadCausalLM(modelDir);
  const ids = tokenizer.encode(prose(24, 5), { addSpecialTokens: false });
  const heldout = (dir: string) => {
    const model = loadPretrained(dir);
    model.eval();
    const windows = new LmWindows(ids, 16, 48);
    return noGrad(() =>
      tidy(() => {
        const { ids: x, targets } = windows.next(windows.windows.length);
        const logits = model.forward(x);
        return crossEntropy(reshape(logits, [targets.numel, logits.size(-1)]), targets).item();
      }),
    );
  };
  const [off, on] = [heldout(plain), heldout(mixed)];
  assert.ok(on < off - 0.3, `held-out corpus loss with the mix ${on}, without ${off}`);

  // Exact resume: the corpus position is in the checkpoint (dropout on, so the RNG too).
  const resumeCfg = { ...config, epochs: 2, ptxCoef: 0.5, dropout: 0.1, saveEvery: 2 };
  const run = (outDir: string, extra: Partial<Parameters<typeof trainSft>[0]> = {}) =>
    trainSft({ modelDir, dataFile: data, outDir, config: resumeCfg, ptxFiles: [corpus], log: quiet, ...extra });
  run(join(root, 'ptx-full'));
  const ac = new AbortController();
  const cut = join(root, 'ptx-cut');
  run(cut, { signal: ac.signal, onStep: (step) => step === 3 && ac.abort() });
  assert.equal(run(cut, { resume: true }).steps, 8);
  assertSameRun(cut, join(root, 'ptx-full'));

  // A coefficient without a corpus, or a corpus with γ_ptx 0: a clear error, nothing written.
  const bad = join(root, 'ptx-bad');
  assert.throws(
    () => run(bad, { ptxFiles: undefined }),
    /field "ptxCoef" is 0\.5 but no pretraining corpus is given: pass --ptx/,
  );
  assert.throws(
    () => trainSft({ modelDir, dataFile: data, outDir: bad, config, ptxFiles: [corpus], log: quiet }),
    /--ptx\) is mixed in only with field "ptxCoef" > 0/,
  );
  assert.throws(() => run(bad, { ptxFiles: [join(root, 'no-corpus.txt')] }), /no-corpus\.txt/);
  assert.ok(!existsSync(bad), 'nothing written');
  const help: string[] = [];
  const log = console.log;
  console.log = (s: string) => help.push(s);
  try {
    assert.equal(await runSftCommand(['--help']), 0);
  } finally {
    console.log = log;
  }
  assert.match(help.join('\n'), /--ptx FILE\.\.\..*\n[\s\S]*--ptx-coef X/);
});
