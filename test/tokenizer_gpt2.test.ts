// Parity with the real GPT-2 tokenizer, offline: the devDependency gpt-tokenizer ships GPT-2's ranks (tiktoken's
// r50k_base: rank = GPT-2 token id) and its own encoder. We turn the ranks into a Hugging Face tokenizer.json
// (vocab = byte-level token -> rank; merges recovered from the ranks), load it with our Tokenizer, and compare
// ids with gpt-tokenizer on the fixture texts.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import ranks from 'gpt-tokenizer/bpeRanks/r50k_base';
import { encode as gpt2Encode } from 'gpt-tokenizer/encoding/r50k_base';
import { BYTE_TO_CHAR, Tokenizer, toByteLevel } from '../src/tokenizer/index.js';

const FIXTURE = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'tokenizer');

/** GPT-2's tokenizer.json rebuilt from tiktoken-style ranks. */
function gpt2TokenizerJson(): object {
  const tokens = ranks.map((t) => (typeof t === 'string' ? toByteLevel(t) : t.map((b) => BYTE_TO_CHAR[b]).join('')));
  const rank = new Map(tokens.map((t, r) => [t, r]));
  const merges: string[] = [];
  for (let r = 256; r < tokens.length; r++) {
    // Byte-pair encode the token with the merges of lower rank: what is left is the pair that makes it.
    let parts = [...tokens[r]];
    while (parts.length > 2) {
      let best = -1;
      let bestRank = r;
      for (let i = 0; i + 1 < parts.length; i++) {
        const q = rank.get(parts[i] + parts[i + 1]);
        if (q !== undefined && q < bestRank) [best, bestRank] = [i, q];
      }
      assert.ok(best >= 0, `no merge path for rank ${r}`);
      parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
    }
    assert.equal(parts.length, 2, `rank ${r}`);
    merges.push(`${parts[0]} ${parts[1]}`);
  }
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    added_tokens: [{ id: 50256, content: '<|endoftext|>', special: true, normalized: false }],
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', vocab: { ...Object.fromEntries(rank), '<|endoftext|>': 50256 }, merges },
  };
}

test('GPT-2 ids match gpt-tokenizer (r50k_base) on the fixture texts', () => {
  const tok = Tokenizer.fromJSON(gpt2TokenizerJson(), undefined, 'gpt2/tokenizer.json');
  assert.equal(tok.vocabSize, 50257);
  assert.equal(tok.eosId, 50256);
  assert.deepEqual(tok.encode('Hello world'), [15496, 995]);
  const texts: string[] = [
    ...JSON.parse(readFileSync(join(FIXTURE, 'texts.json'), 'utf8')),
    ...JSON.parse(readFileSync(join(FIXTURE, 'fuzz_texts.json'), 'utf8')),
  ];
  for (const text of texts) {
    const ids = tok.encode(text);
    // Hugging Face semantics for added tokens: cut them out, encode the pieces between them.
    const expected = text
      .split('<|endoftext|>')
      .flatMap((piece, i) => [...(i > 0 ? [50256] : []), ...gpt2Encode(piece)]);
    assert.deepEqual(ids, expected, JSON.stringify(text));
    assert.equal(tok.decode(ids), text);
  }
});
