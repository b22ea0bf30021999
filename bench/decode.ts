// Decode speed at GPT-2-124M shapes (untied head, random weights, prompt 128, 128 new tokens, greedy), ours in f32 and
// bf16 weights at batch 1 and 4, and with --vs-llama llama.cpp (node-llama-cpp's prebuilt binary) on the same
// models exported to GGUF, in the same run with the same threads. Decode rates count the tokens after the first
// (the prefill's) over the time between them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from '../src/models/generate.js';
import { exportGguf } from '../src/models/gguf.js';
import { GPT2, type GPT2Config } from '../src/models/gpt2.js';
import { native, Rng, Tensor } from '../src/tensor/index.js';
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

function ourDecode(model: GPT2, batch: number): number {
  const stamps: number[] = [];
  generate(model, prompts(batch, model.config.vocabSize), {
    maxNewTokens: NEW,
    temperature: 0,
    onToken: (row) => {
      if (row === 0) stamps.push(performance.now());
    },
  });
  return (batch * (stamps.length - 1)) / ((stamps[stamps.length - 1] - stamps[0]) / 1000);
}

type LlamaModel = Awaited<ReturnType<Awaited<ReturnType<typeof import('node-llama-cpp')['getLlama']>>['loadModel']>>;

async function llamaDecode(lm: LlamaModel, batch: number, threads: number, vocab: number): Promise<number> {
  const ctx = await lm.createContext({ contextSize: PROMPT + NEW, sequences: batch, threads, batchSize: 512 });
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
          const now = performance.now();
          if (n === 0) first[b] = now;
          last[b] = now;
          if (++n === NEW) break;
        }
        counts[b] = n;
      }),
    );
    const tokens = counts.reduce((s, n) => s + n - 1, 0);
    return tokens / ((Math.max(...last) - Math.max(...first)) / 1000);
  } finally {
    await ctx.dispose();
  }
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
  result: Record<string, number>;
  lines: string[];
}

/** Ours (and llama.cpp's with vsLlama) decode rates, `repeats` rounds; medians and per-round ratios' medians. */
export async function decodeBench(
  threads: number,
  repeats: number,
  vsLlama: boolean,
  config = DECODE_CONFIG,
): Promise<DecodeNumbers> {
  const lines: string[] = [];
  const f32 = new GPT2(config, new Rng(0)).eval();
  const bf16 = new GPT2(config, new Rng(0)).eval().toDtype('bf16');
  const models = { f32, bf16 };
  const dir = mkdtempSync(join(tmpdir(), 'ik-bench-gguf-'));
  const llamaModels: Partial<Record<(typeof DTYPES)[number], LlamaModel>> = {};
  let dispose = async () => {};
  try {
    if (vsLlama) {
      const { getLlama } = await import('node-llama-cpp');
      const llama = await getLlama({
        gpu: false,
        build: 'never',
        usePrebuiltBinaries: true,
        logLevel: 'error' as never,
      });
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
    }
    const ours: Record<string, number[]> = {};
    const theirs: Record<string, number[]> = {};
    const ratios: Record<string, number[]> = {};
    for (let round = 0; round < repeats; round++)
      for (const dt of DTYPES)
        for (const b of BATCHES) {
          const key: Key = `${dt}_b${b}`;
          const o = ourDecode(models[dt], b);
          (ours[key] ??= []).push(o);
          let line = `round ${round + 1} decode ${dt} B=${b}: ours ${o.toFixed(1)} tok/s`;
          const lm = llamaModels[dt];
          if (lm) {
            const l = await llamaDecode(lm, b, threads, config.vocabSize);
            (theirs[key] ??= []).push(l);
            (ratios[key] ??= []).push(o / l);
            line += `, llama.cpp ${l.toFixed(1)} tok/s (${(o / l).toFixed(2)}×)`;
          }
          lines.push(line);
          console.log(line);
        }
    const result: Record<string, number> = {};
    for (const [key, xs] of Object.entries(ours)) result[`decode_${key}_tok_s`] = +median(xs).toFixed(1);
    for (const [key, xs] of Object.entries(theirs)) {
      const [dt, b] = key.split('_');
      result[`llama_decode_${b}_${dt}_tok_s`] = +median(xs).toFixed(1);
      result[`ratio_decode_${b}_${dt}`] = +median(ratios[key]).toFixed(3);
    }
    // Our bf16 over our f32, per round.
    const speedup = ours.bf16_b1.map((x, i) => x / ours.f32_b1[i]);
    result.ratio_decode_b1_bf16_over_f32 = +median(speedup).toFixed(3);
    const cacheLen = PROMPT + NEW / 2;
    for (const dt of DTYPES)
      result[`decode_b1_${dt}_gbs`] = +(
        (stepBytes(models[dt], cacheLen) * result[`decode_${dt}_b1_tok_s`]) /
        1e9
      ).toFixed(1);
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
