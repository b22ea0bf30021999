// Decode speed at GPT-2-124M shapes (untied head, random weights, prompt 128, 128 new tokens, greedy), ours in f32 and
// bf16 weights at batch 1 and 4, and with --vs-llama llama.cpp (node-llama-cpp's prebuilt binary) on the same
// models exported to GGUF, in the same run with the same threads. Decode rates count the tokens after the first
// (the prefill's) over the time between them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from '../src/models/generate.js';
import { exportGguf } from '../src/models/gguf.js';
import { GPT2, type GPT2Config } from '../src/models/gpt2.js';
import { native, Rng, setThreads, Tensor } from '../src/tensor/index.js';
import { trainBpe } from '../src/tokenizer/index.js';
import { BENCH_MODELS } from './models.js';

const PROMPT = 128;
const NEW = 128;
const BATCHES = [1, 4] as const;
const DTYPES = ['f32', 'bf16'] as const;
type Key = `${(typeof DTYPES)[number]}_b${(typeof BATCHES)[number]}`;

// GGUF's gpt2 architecture computes GELU's tanh form: the same cost as the exact one the training benchmark uses.
export const DECODE_CONFIG: GPT2Config = { ...BENCH_MODELS['gpt2-124m'].config, activation: 'gelu_new' };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function prompts(batch: number, vocab: number): number[][] {
  const rng = new Rng(11);
  return Array.from({ length: batch }, () => Array.from({ length: PROMPT }, () => rng.int(vocab)));
}

/** Bytes a batch-1 decode step reads: every matrix but the embeddings (a few rows each), plus the KV cache. */
export function stepBytes(model: GPT2, cacheLen: number): number {
  let bytes = 0;
  for (const [name, p] of model.namedParameters())
    if (p.ndim === 2 && !/^w[tp]e\./.test(name)) bytes += p.buffer.byteLength;
  const c = model.config;
  return bytes + 2 * c.nLayer * cacheLen * c.nEmbd * 4;
}

function ourDecode(model: GPT2, batch: number, newTokens = NEW): number {
  const stamps: number[] = [];
  generate(model, prompts(batch, model.config.vocabSize), {
    maxNewTokens: newTokens,
    temperature: 0,
    onToken: (row) => {
      if (row === 0) stamps.push(performance.now());
    },
  });
  return (batch * (stamps.length - 1)) / ((stamps[stamps.length - 1] - stamps[0]) / 1000);
}

type LlamaModule = typeof import('node-llama-cpp');
type Llama = Awaited<ReturnType<LlamaModule['getLlama']>>;
type LlamaModel = Awaited<ReturnType<Llama['loadModel']>>;

// Thread counts each engine may pick from (its fastest, per dtype and batch): the budget, and one less. On a 2-core
// machine a team of 2 spinning threads stalls whenever anything else needs a core: beside other load llama.cpp ran
// 25× slower with 2 threads than with 1, and its quiet 2-thread figure (41 tok/s, f32 B=1) was below what its
// 1-thread CPU time (~17 ms a token) allows.
const threadChoices = (threads: number) => [...new Set([threads, Math.max(1, threads - 1)])];

/** Our fastest thread count for this model and batch, by a short run of each. */
function bestOurThreads(model: GPT2, batch: number, threads: number): { threads: number; tried: string[] } {
  let best = { threads, tokS: 0 };
  const tried: string[] = [];
  for (const t of threadChoices(threads)) {
    setThreads(t);
    const tokS = ourDecode(model, batch, NEW / 2);
    tried.push(`threads ${t}: ${tokS.toFixed(1)} tok/s`);
    if (tokS > best.tokS) best = { threads: t, tokS };
  }
  setThreads(threads);
  return { threads: best.threads, tried };
}

/** How llama.cpp runs: its thread count (at most ours) and whether flash attention is on. */
interface LlamaSetup {
  threads: number;
  flashAttention: boolean;
}
const describeSetup = (s: LlamaSetup) => `threads ${s.threads}, flash attention ${s.flashAttention ? 'on' : 'off'}`;

/** llama.cpp's messages, kept for what the benchmark reads from them (the CPU backend, its own decode timer). */
class LlamaLog {
  lines: string[] = [];
  take(): string[] {
    const out = this.lines;
    this.lines = [];
    return out;
  }
}

interface LlamaRate {
  /** Tokens per second as a node-llama-cpp user sees them (the clock of this process). */
  tokS: number;
  /** Batch 1 only: llama.cpp's own decode timer (llama_decode time alone, without node-llama-cpp's JS around it). */
  nativeTokS?: number;
}

async function llamaDecode(
  lm: LlamaModel,
  log: LlamaLog,
  batch: number,
  setup: LlamaSetup,
  vocab: number,
  newTokens = NEW,
): Promise<LlamaRate> {
  // threads.min makes the count a demand, not a hint that node-llama-cpp may lower.
  const ctx = await lm.createContext({
    contextSize: PROMPT + NEW,
    sequences: batch,
    threads: { ideal: setup.threads, min: setup.threads },
    batchSize: 512,
    flashAttention: setup.flashAttention,
    performanceTracking: batch === 1,
  });
  try {
    const ps = prompts(batch, vocab);
    const first: number[] = [];
    const last: number[] = [];
    const counts: number[] = [];
    // Sequences evaluated together are batched into one llama_decode per step by node-llama-cpp.
    await Promise.all(
      ps.map(async (p, b) => {
        let n = 0;
        for await (const _ of ctx.getSequence().evaluate(p as never[], { temperature: 0 })) {
          if (n === 0) {
            // Printing resets llama.cpp's counters: what the final print reports is the decode steps alone.
            if (batch === 1) await ctx.printTimings();
            first[b] = performance.now();
          }
          last[b] = performance.now();
          if (++n === newTokens) break;
        }
        counts[b] = n;
      }),
    );
    const tokens = counts.reduce((s, n) => s + n - 1, 0);
    const rate: LlamaRate = { tokS: tokens / ((Math.max(...last) - Math.max(...first)) / 1000) };
    if (batch === 1) {
      log.take();
      await ctx.printTimings();
      // "eval time =  1234.56 ms /   127 runs": single-token llama_decode calls.
      const m = log
        .take()
        .map((l) => /\beval time\s*=\s*([\d.]+) ms\s*\/\s*(\d+) runs/.exec(l))
        .find((x) => x && !/prompt/.test(x.input));
      if (m) rate.nativeTokS = Number(m[2]) / (Number(m[1]) / 1000);
    }
    return rate;
  } finally {
    await ctx.dispose();
  }
}

/** The setup among threadChoices × (flash attention off, on) that decodes fastest here, by a short run of each. */
async function bestLlamaSetup(
  lm: LlamaModel,
  log: LlamaLog,
  batch: number,
  threads: number,
  vocab: number,
): Promise<{ setup: LlamaSetup; tried: string[] }> {
  let best: { setup: LlamaSetup; tokS: number } | null = null;
  const tried: string[] = [];
  for (const t of threadChoices(threads))
    for (const flashAttention of [false, true]) {
      const setup = { threads: t, flashAttention };
      const { tokS } = await llamaDecode(lm, log, batch, setup, vocab, NEW / 2);
      tried.push(`${describeSetup(setup)}: ${tokS.toFixed(1)} tok/s`);
      if (!best || tokS > best.tokS) best = { setup, tokS };
    }
  return { setup: best!.setup, tried };
}

/** Which llama.cpp runs: node-llama-cpp's version, llama.cpp's release, the binary and the CPU backend it loaded. */
function llamaBackend(llama: Llama, lines: string[]): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.resolve('node-llama-cpp')), 'utf8'));
  const cpu = lines.map((l) => /loaded CPU backend from (\S+)/.exec(l)?.[1]).find(Boolean);
  return (
    `node-llama-cpp ${pkg.version}, llama.cpp ${llama.llamaCppRelease.release}, ${llama.buildType} binary, ` +
    `gpu ${llama.gpu || 'off'}, CPU backend ${cpu ? basename(cpu) : 'built in'}`
  );
}

/** Copy bandwidth of this machine (GB/s read + written, 256 MB, all threads): the ceiling of a decode step's reads. */
export function copyBandwidth(): number {
  const n = 64 << 20;
  const a = Tensor.empty([n]);
  const b = Tensor.empty([n]);
  a.f32.fill(1);
  b.f32.fill(2);
  const ts: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    native.copyBlocks(a.f32, b.f32, 1, n, n, 0, n, 0);
    ts.push(performance.now() - t0);
  }
  a.dispose();
  b.dispose();
  return (2 * n * 4) / (median(ts) / 1000) / 1e9;
}

/** Resident memory (MB) of a fresh process holding the 124M decode model in dtype, after a collection. */
function residentMb(dtype: 'f32' | 'bf16'): number {
  const script = fileURLToPath(new URL('./model_rss.js', import.meta.url));
  const r = spawnSync(process.execPath, ['--expose-gc', script, dtype], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`model_rss ${dtype}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

export interface DecodeNumbers {
  result: Record<string, number | string>;
  lines: string[];
}

/**
 * Ours (and llama.cpp's with vsLlama) decode rates, `repeats` rounds; medians and per-round ratios' medians.
 * Each engine runs its fastest setup within the thread budget, chosen per dtype and batch by short runs first.
 */
export async function decodeBench(
  threads: number,
  repeats: number,
  vsLlama: boolean,
  config = DECODE_CONFIG,
): Promise<DecodeNumbers> {
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    console.log(line);
  };
  const f32 = new GPT2(config, new Rng(0)).eval();
  const bf16 = new GPT2(config, new Rng(0)).eval().toDtype('bf16');
  const models = { f32, bf16 };
  const dir = mkdtempSync(join(tmpdir(), 'ik-bench-gguf-'));
  const llamaModels: Partial<Record<(typeof DTYPES)[number], LlamaModel>> = {};
  const setups: Partial<Record<Key, LlamaSetup>> = {};
  const log = new LlamaLog();
  const result: Record<string, number | string> = {};
  let dispose = async () => {};
  try {
    if (vsLlama) {
      const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
      const llama = await getLlama({
        gpu: false,
        build: 'never',
        usePrebuiltBinaries: true,
        // Our thread budget is llama.cpp's too; node-llama-cpp would otherwise cap or split it on its own.
        maxThreads: threads,
        // Messages at 'log' level name the CPU backend loaded; 'info' ones carry llama.cpp's own timings. Errors show.
        logLevel: LlamaLogLevel.log,
        logger: (level, message) => {
          if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal)
            console.error(`llama.cpp: ${message.trimEnd()}`);
          else log.lines.push(message);
        },
      });
      await new Promise((r) => setTimeout(r, 0)); // node-llama-cpp hands log lines over on a later tick
      result.llama_backend = llamaBackend(llama, log.take());
      say(`llama.cpp: ${result.llama_backend}`);
      const tok = trainBpe(['the benchmark has a tokenizer of its own, a small one.'], { vocabSize: 280 });
      for (const dt of DTYPES) {
        const file = join(dir, `gpt2-124m-${dt}.gguf`);
        exportGguf(models[dt], tok, file, { dtype: dt });
        llamaModels[dt] = await llama.loadModel({ modelPath: file });
      }
      dispose = async () => {
        for (const m of Object.values(llamaModels)) await m.dispose();
        await llama.dispose();
      };
      for (const dt of DTYPES)
        for (const b of BATCHES) {
          const { setup, tried } = await bestLlamaSetup(llamaModels[dt]!, log, b, threads, config.vocabSize);
          setups[`${dt}_b${b}`] = setup;
          result[`llama_setup_b${b}_${dt}`] = describeSetup(setup);
          say(`llama.cpp ${dt} B=${b} setups (${NEW / 2} tokens each): ${tried.join('; ')}`);
        }
    }
    const ourThreads: Partial<Record<Key, number>> = {};
    for (const dt of DTYPES)
      for (const b of BATCHES) {
        const { threads: t, tried } = bestOurThreads(models[dt], b, threads);
        ourThreads[`${dt}_b${b}`] = t;
        result[`decode_threads_b${b}_${dt}`] = t;
        say(`ours ${dt} B=${b} (${NEW / 2} tokens each): ${tried.join('; ')}`);
      }
    const ours: Record<string, number[]> = {};
    const theirs: Record<string, number[]> = {};
    const ownTimer: Record<string, number[]> = {};
    const ratios: Record<string, number[]> = {};
    for (let round = 0; round < repeats; round++)
      for (const dt of DTYPES)
        for (const b of BATCHES) {
          const key: Key = `${dt}_b${b}`;
          setThreads(ourThreads[key]!);
          const o = ourDecode(models[dt], b);
          setThreads(threads);
          (ours[key] ??= []).push(o);
          let line = `round ${round + 1} decode ${dt} B=${b}: ours ${o.toFixed(1)} tok/s`;
          const lm = llamaModels[dt];
          if (lm) {
            const l = await llamaDecode(lm, log, b, setups[key]!, config.vocabSize);
            (theirs[key] ??= []).push(l.tokS);
            (ratios[key] ??= []).push(o / l.tokS);
            line += `, llama.cpp ${l.tokS.toFixed(1)} tok/s (${(o / l.tokS).toFixed(2)}×)`;
            if (l.nativeTokS !== undefined) {
              (ownTimer[key] ??= []).push(l.nativeTokS);
              line += ` [llama_decode alone ${l.nativeTokS.toFixed(1)} tok/s]`;
            }
          }
          say(line);
        }
    for (const [key, xs] of Object.entries(ours)) result[`decode_${key}_tok_s`] = +median(xs).toFixed(1);
    for (const [key, xs] of Object.entries(theirs)) {
      const [dt, b] = key.split('_');
      result[`llama_decode_${b}_${dt}_tok_s`] = +median(xs).toFixed(1);
      result[`ratio_decode_${b}_${dt}`] = +median(ratios[key]).toFixed(3);
      if (ownTimer[key]) result[`llama_native_decode_${b}_${dt}_tok_s`] = +median(ownTimer[key]).toFixed(1);
    }
    // Our bf16 over our f32, per round.
    const speedup = ours.bf16_b1.map((x, i) => x / ours.f32_b1[i]);
    result.ratio_decode_b1_bf16_over_f32 = +median(speedup).toFixed(3);
    const cacheLen = PROMPT + NEW / 2;
    for (const dt of DTYPES)
      result[`decode_b1_${dt}_gbs`] = +((stepBytes(models[dt], cacheLen) * median(ours[`${dt}_b1`])) / 1e9).toFixed(1);
    result.copy_gbs = +copyBandwidth().toFixed(1);
    const rss = { f32: residentMb('f32'), bf16: residentMb('bf16') };
    result.rss_124m_f32_mb = Math.round(rss.f32);
    result.rss_124m_bf16_mb = Math.round(rss.bf16);
    result.ratio_rss_bf16_over_f32 = +(rss.bf16 / rss.f32).toFixed(3);
    lines.push(
      `decode B=1 reads ${result.decode_b1_f32_gbs} GB/s (f32) and ${result.decode_b1_bf16_gbs} GB/s (bf16) of weights; ` +
        `the machine copies ${result.copy_gbs} GB/s (read + write)`,
      `resident memory of the 124M model: ${result.rss_124m_f32_mb} MB f32, ${result.rss_124m_bf16_mb} MB bf16`,
    );
    return { result, lines };
  } finally {
    await dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
