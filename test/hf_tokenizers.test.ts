// Tokenizers trained and saved by Hugging Face `tokenizers` 0.23 / transformers 5.17 in the pre-tokenizer layouts
// of GPT-2, Llama 3 (split regex, digits in threes, BOS post-processor) and Qwen2 (NFC, single digits), with the ids,
// decodings and chat renderings the Rust library and transformers produced for the fixture texts. Regenerate with
// scripts/interop/make_hf_tokenizers.py where transformers is installed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type ChatMessage, Tokenizer } from '../src/tokenizer/index.js';

const root = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'hf-tokenizers');

interface Reference {
  texts: string[];
  ids: number[][];
  idsNoSpecial: number[][];
  decoded: string[];
  messages: ChatMessage[];
  chat: string | null;
  chatPrompt: string | null;
}

for (const style of ['gpt2-style', 'llama3-style', 'qwen2-style']) {
  const ref: Reference = JSON.parse(readFileSync(join(root, style, 'reference.json'), 'utf8'));
  const tok = Tokenizer.fromDir(join(root, style));

  test(`${style}: ids equal the Rust library's on every fixture text, with and without special tokens`, () => {
    ref.texts.forEach((text, i) => {
      assert.deepEqual(tok.encode(text), ref.ids[i], `text ${i} ${JSON.stringify(text)}`);
      assert.deepEqual(
        tok.encode(text, { addSpecialTokens: false }),
        ref.idsNoSpecial[i],
        `text ${i} without specials`,
      );
      assert.equal(tok.decode(ref.idsNoSpecial[i]), ref.decoded[i], `decoding of text ${i}`);
    });
  });

  test(`${style}: BOS and EOS come from tokenizer_config.json`, () => {
    const config = JSON.parse(readFileSync(join(root, style, 'tokenizer_config.json'), 'utf8'));
    assert.equal(tok.eosId, tok.tokenToId(config.eos_token));
    if (config.bos_token) assert.equal(tok.bosId, tok.tokenToId(config.bos_token));
  });

  if (ref.chat !== null)
    test(`${style}: the chat template renders exactly as transformers' apply_chat_template`, () => {
      assert.equal(tok.applyChatTemplate(ref.messages), ref.chat);
      assert.equal(tok.applyChatTemplate(ref.messages, { addGenerationPrompt: true }), ref.chatPrompt);
    });
}
