// Runs the PyTorch reference of ../shared/bench in the same command, so that ratios are measured side by side.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TorchNumbers {
  trainF32: number;
  trainBf16: number;
  /** Sampling tok/s including the prefill, batch 8, prompt 128, 128 new tokens (fp32). */
  sample: number;
  raw: string;
}

export function torchScript(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env.INSTRUCTKIT_TORCH_REFERENCE,
    resolve(here, '../../../shared/bench/torch-reference.sh'),
    resolve(here, '../../shared/bench/torch-reference.sh'),
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found)
    throw new Error(
      `--vs-torch: torch-reference.sh not found (looked in ${candidates.join(', ')}); set INSTRUCTKIT_TORCH_REFERENCE`,
    );
  return found;
}

function pick(text: string, re: RegExp, what: string): number {
  const m = text.match(re);
  if (!m) throw new Error(`--vs-torch: could not read ${what} from the PyTorch output:\n${text}`);
  return Number(m[1]);
}

export function runTorch(threads: number, config: 'ref' | 'gpt2-124m'): TorchNumbers {
  const script = torchScript();
  const r = spawnSync('bash', [script, String(threads), config], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`--vs-torch: ${script} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const out = r.stdout;
  return {
    trainF32: pick(out, /train fp32:.*?(\d+) tok\/s/, 'fp32 training tok/s'),
    trainBf16: pick(out, /train bf16-autocast:.*?(\d+) tok\/s/, 'bf16 training tok/s'),
    sample: pick(out, /sample B=\d+ prompt=128 new=128:.*incl\. prefill (\d+) tok\/s/, 'sampling tok/s'),
    raw: out,
  };
}

export const repoRoot = (): string => join(dirname(fileURLToPath(import.meta.url)), '..', '..');
