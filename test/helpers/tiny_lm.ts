// A tiny GPT-2 with a small chat tokenizer, written as a model folder, for trainer tests.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GPT2, gpt2Defaults, savePretrained } from '../../src/models/index.js';
import { Rng } from '../../src/tensor/index.js';
import { trainBpe } from '../../src/tokenizer/index.js';

export const WORDS = ['red', 'green', 'blue', 'cyan', 'gold', 'pink', 'gray', 'teal'];

/** Writes config.json, model.safetensors and the tokenizer into dir; returns dir. */
export function writeTinyModel(dir: string, opts: { nPositions?: number; seed?: number; nEmbd?: number } = {}): string {
  const corpus = Array.from({ length: 40 }, (_, i) => `say ${WORDS[i % 8]} then ${WORDS[(i * 3) % 8]} please.`);
  const tok = trainBpe(corpus, { vocabSize: 300, chatTokens: true });
  const model = new GPT2(
    {
      ...gpt2Defaults,
      vocabSize: tok.vocabSize,
      nPositions: opts.nPositions ?? 48,
      nEmbd: opts.nEmbd ?? 32,
      nLayer: 2,
      nHead: 2,
      residPdrop: 0,
      embdPdrop: 0,
    },
    new Rng(opts.seed ?? 1),
  );
  savePretrained(model, dir);
  tok.save(dir);
  return dir;
}

export function writeJsonl(path: string, rows: unknown[]): string {
  writeFileSync(path, rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n'));
  return path;
}

/**
 * A tiny base model and the files each trainer reads, under root: 16 demonstrations, 8 rankings of 3 responses and
 * 4 prompts, all on the colour words.
 */
export function writeTinyTrainingSet(root: string): { base: string; demos: string; rankings: string; prompts: string } {
  return {
    base: writeTinyModel(join(root, 'base')),
    demos: writeJsonl(
      join(root, 'demos.jsonl'),
      Array.from({ length: 16 }, (_, i) => ({ prompt: `say ${WORDS[i % 8]}`, completion: `${WORDS[i % 8]} twice` })),
    ),
    rankings: writeJsonl(
      join(root, 'rankings.jsonl'),
      Array.from({ length: 8 }, (_, i) => ({
        prompt: `say ${WORDS[i % 8]}`,
        responses: [WORDS[i % 8], WORDS[(i + 1) % 8], WORDS[(i + 2) % 8]],
        ranking: [0, 1, 2],
      })),
    ),
    prompts: writeJsonl(
      join(root, 'prompts.jsonl'),
      WORDS.slice(0, 4).map((w) => ({ prompt: `say ${w}` })),
    ),
  };
}
