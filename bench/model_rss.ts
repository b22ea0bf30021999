// Prints the resident memory (MB) of this process once it holds the 124M decode benchmark model in the dtype given
// as argument (run with --expose-gc: the f32 buffers a bf16 model was cast from are collected first).
import { GPT2 } from '../src/models/gpt2.js';
import { Rng } from '../src/tensor/index.js';
import { DECODE_CONFIG } from './decode.js';

const dtype = process.argv[2] === 'bf16' ? 'bf16' : 'f32';
const model = new GPT2(DECODE_CONFIG, new Rng(0)).eval().toDtype(dtype);
// V8 frees the backing stores of collected buffers on a background task: collect, give it time, twice.
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
for (let i = 0; i < 2; i++) {
  gc();
  await new Promise((r) => setTimeout(r, 500));
}
console.log((process.memoryUsage().rss / 2 ** 20).toFixed(1));
if (model.numParameters() === 0) process.exitCode = 1; // keeps the model alive until the measurement
