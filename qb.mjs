import { decodeBench } from '/work/wt/decode/dist/bench/decode.js';
import { BENCH_MODELS } from '/work/wt/decode/dist/bench/models.js';
const cfg = { ...BENCH_MODELS.ref.config, activation: 'gelu_new', nPositions: 256 };
const d = await decodeBench(2, 1, true, cfg);
console.log(d.lines.slice(-2).join('\n'));
console.log(JSON.stringify(d.result));
