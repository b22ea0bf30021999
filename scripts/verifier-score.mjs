// Mean score of a model's answers under a verifier module (the same kind `instructkit grpo --reward-module` takes),
// for comparing a policy before and after training on prompts it did or did not train on. Needs `npx tsc -p .`.
// Usage: node scripts/verifier-score.mjs MODEL_DIR PROMPTS_JSONL [VERIFIER (default: the demo world's checker)]
//          [--temperature T (default 0: greedy)] [--samples N (per prompt, default 1)] [--max-new-tokens N (32)]
// Prompts: any JSONL with a "prompt" field (a prompts file, or a rankings export); each distinct prompt once.
// Last line: one JSON object {model, prompts, temperature, samples, score}.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { generate } from '../dist/src/models/index.js';
import { loadCausalLM } from '../dist/src/rlhf/data.js';
import { loadVerifierModule } from '../dist/src/rlhf/reward_sources.js';
import { Formatter } from '../dist/src/tokenizer/format.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    temperature: { type: 'string', default: '0' },
    samples: { type: 'string', default: '1' },
    'max-new-tokens': { type: 'string', default: '32' },
  },
});
const [dir, file, verifierPath = new URL('../dist/src/demo/verifier.js', import.meta.url).pathname] = positionals;
if (!dir || !file) {
  console.error(
    'usage: node scripts/verifier-score.mjs MODEL_DIR PROMPTS_JSONL [VERIFIER] [--temperature T] [--samples N]',
  );
  process.exit(2);
}
const temperature = Number(values.temperature);
const samples = Number(values.samples);
const lines = readFileSync(file, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '');
const prompts = [...new Set(lines.map((l) => JSON.parse(l).prompt))];
const verifier = await loadVerifierModule(verifierPath);
const { model, tokenizer } = loadCausalLM(dir);
model.eval();
const fmt = new Formatter(tokenizer, dir);
let total = 0;
let count = 0;
for (let s = 0; s < samples; s++)
  for (let i = 0; i < prompts.length; i += 16) {
    const chunk = prompts.slice(i, i + 16);
    const gen = generate(
      model,
      chunk.map((p) => fmt.prompt(p)),
      {
        maxNewTokens: Number(values['max-new-tokens']),
        temperature,
        seed: 1000 + s * 7919 + i,
        eosTokenIds: [fmt.eosId],
        padTokenId: fmt.padId,
      },
    );
    for (const [b, p] of chunk.entries()) {
      total += await verifier.fn(p, tokenizer.decode(gen.tokens[b].filter((t) => t !== fmt.eosId)));
      count++;
    }
  }
console.log(JSON.stringify({ model: dir, prompts: prompts.length, temperature, samples: count, score: total / count }));
