import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  BYTE_TO_CHAR,
  CHAR_TO_BYTE,
  fromByteLevel,
  preTokenize,
  Tokenizer,
  TokenizerFileError,
  type TokenizerJson,
  toByteLevel,
  trainBpe,
} from '../src/tokenizer/index.js';

// dist/test/tokenizer.test.js -> repository root
const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'tokenizer');
const readJson = (name: string) => JSON.parse(readFileSync(join(FIXTURE, name), 'utf8'));
const corpusLines = () => readFileSync(join(FIXTURE, 'corpus.txt'), 'utf8').split(/(?<=\n)/);
/** The options the committed fixture tokenizer was trained with. */
const FIXTURE_OPTIONS = { vocabSize: 512, chatTokens: true } as const;

/** assert.throws, matching `pattern` against the error's message (assert.throws with a RegExp sees "Name: message"). */
function throwsMessage(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.match(e.message, pattern);
    return true;
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'instructkit-tok-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let tmpCount = 0;
const tmpDir = () => join(tmp, String(tmpCount++));

describe('byte-level helpers', () => {
  test('the byte table is a bijection onto printable code points', () => {
    assert.equal(new Set(BYTE_TO_CHAR).size, 256);
    assert.equal(BYTE_TO_CHAR[0x20], 'Ġ');
    assert.equal(BYTE_TO_CHAR[0x0a], 'Ċ');
    assert.equal(BYTE_TO_CHAR[0x41], 'A');
    assert.equal(BYTE_TO_CHAR[0xff], 'ÿ');
    for (let b = 0; b < 256; b++) assert.equal(CHAR_TO_BYTE.get(BYTE_TO_CHAR[b]), b);
    assert.equal(toByteLevel('é '), 'Ã©Ġ');
    assert.equal(fromByteLevel(toByteLevel('a 👩‍💻\r\n')), 'a 👩‍💻\r\n');
  });

  test('GPT-2 pre-tokenization', () => {
    assert.deepEqual(preTokenize("It's  a  test\n\n 42x"), ['It', "'s", ' ', ' a', ' ', ' test', '\n\n', ' 42', 'x']);
    assert.deepEqual(preTokenize('hi   '), ['hi', '   ']);
  });
});

describe('trainBpe', () => {
  test('learns the most frequent pair first and stops below minFrequency', () => {
    // pieces: "ab", " ab", " ab", " abc": (a,b) 4 times, (Ġ,a) 3 times, then (Ġ,ab) 3 times, (Ġab,c) once.
    const tok = trainBpe(['ab ab ab abc'], { vocabSize: 300 });
    assert.deepEqual(tok.json.model.merges, ['a b', 'Ġ ab']);
    const all = trainBpe(['ab ab ab abc'], { vocabSize: 300, minFrequency: 1 });
    assert.deepEqual(all.json.model.merges, ['a b', 'Ġ ab', 'Ġab c']);
    assert.equal(all.vocabSize, 1 + 256 + 3);
    assert.equal(all.tokenToId('Ġabc'), 259);
    assert.deepEqual(all.encode('ab abc'), [257, 259]);
  });

  test('ties go to the pair with the smaller ids', () => {
    // "ab", " cd" twice each: (a,b), (Ġ,c), (c,d) all count 2; Ġ (byte 0x20) has the smallest id.
    const tok = trainBpe(['ab cd', 'ab cd'], { vocabSize: 400 });
    assert.deepEqual(tok.json.model.merges, ['Ġ c', 'a b', 'Ġc d']);
  });

  test('ids: special tokens, then the 256 bytes in byte order, then merges', () => {
    const tok = trainBpe(['hello hello'], { vocabSize: 270, specialTokens: ['<|endoftext|>', '<|pad|>'] });
    assert.equal(tok.tokenToId('<|endoftext|>'), 0);
    assert.equal(tok.tokenToId('<|pad|>'), 1);
    assert.equal(tok.tokenToId(BYTE_TO_CHAR[0]), 2);
    assert.equal(tok.tokenToId('h'), 2 + 0x68);
    assert.equal(tok.idToToken(258), (tok.json.model.merges[0] as string).replace(' ', ''));
    assert.ok(tok.isSpecial(0) && tok.isSpecial(1) && !tok.isSpecial(2));
    assert.equal(tok.eosId, 0);
    assert.equal(tok.bosId, 0);
    assert.equal(tok.padId, 0);
  });

  test('special tokens in the corpus are not learned from', () => {
    const tok = trainBpe(['x<|endoftext|>y', 'x<|endoftext|>y'], { vocabSize: 300, minFrequency: 1 });
    assert.deepEqual(tok.json.model.merges, []);
    assert.deepEqual(tok.encode('x<|endoftext|>y'), [1 + 0x78, 0, 1 + 0x79]);
  });

  test('a merge that would spell a special token is skipped', () => {
    const tok = trainBpe(['ab ab ab'], { vocabSize: 300, specialTokens: ['ab'] });
    assert.ok(!tok.json.model.merges.includes('a b'));
    assert.equal(tok.tokenToId('ab'), 0);
  });

  test('is deterministic: same corpus (in any order) -> identical files', () => {
    const lines = corpusLines();
    const a = tmpDir();
    const b = tmpDir();
    trainBpe(lines, FIXTURE_OPTIONS).save(a);
    trainBpe([...lines].reverse(), FIXTURE_OPTIONS).save(b);
    for (const f of ['tokenizer.json', 'tokenizer_config.json'])
      assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f);
  });

  test('matches the committed fixture byte for byte', () => {
    const dir = tmpDir();
    trainBpe(corpusLines(), FIXTURE_OPTIONS).save(dir);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      if (process.env.UPDATE_TOKENIZER_FIXTURE === '1') writeFileSync(join(FIXTURE, f), readFileSync(join(dir, f)));
      assert.equal(readFileSync(join(dir, f), 'utf8'), readFileSync(join(FIXTURE, f), 'utf8'), f);
    }
  });

  test('rejects bad options', () => {
    assert.throws(() => trainBpe(['x'], { vocabSize: 100 }), /vocabSize 100 must be an integer in \[257,/);
    assert.throws(() => trainBpe(['x'], { vocabSize: 300, minFrequency: 0 }), /minFrequency/);
    assert.throws(() => trainBpe(['x'], { vocabSize: 300, specialTokens: [''] }), /special token/);
  });

  test('handles a corpus of ~1 MB quickly (incremental pair counts)', () => {
    const lines = corpusLines();
    const texts: string[] = [];
    for (let i = 0; texts.length < 3000; i++) texts.push(`${lines[i % lines.length]} ${i} ${(i * 7919) % 1000}`);
    const t0 = performance.now();
    const tok = trainBpe(texts, { vocabSize: 2000 });
    const ms = performance.now() - t0;
    assert.ok(tok.vocabSize > 1000);
    assert.ok(ms < 30_000, `took ${ms.toFixed(0)} ms`);
  });
});

describe('parity with the independent Python encoder (test/fixtures/make_tokenizer_fixture.py)', () => {
  const tok = Tokenizer.fromDir(FIXTURE);
  for (const [textsFile, idsFile] of [
    ['texts.json', 'ids.json'],
    ['fuzz_texts.json', 'fuzz_ids.json'],
  ]) {
    test(`${textsFile}: ids and round trip`, () => {
      const texts: string[] = readJson(textsFile);
      const ref = readJson(idsFile);
      assert.equal(ref.tokenizer, 'tokenizer.json');
      assert.equal(ref.ids.length, texts.length);
      texts.forEach((text, i) => {
        const ids = tok.encode(text);
        assert.deepEqual(ids, ref.ids[i], `text ${i}: ${JSON.stringify(text)}`);
        assert.equal(tok.decode(ids), text, `round trip ${i}`);
      });
    });
  }

  test('the hand-picked texts cover what the brief asks for', () => {
    const all = (readJson('texts.json') as string[]).join('');
    for (const needle of [
      'é',
      '\u0301',
      '你',
      '😀',
      '\u200d',
      '   ',
      '\t',
      '\n\n',
      '\r\n',
      '345',
      "'re",
      '<|endoftext|>',
    ])
      assert.ok(all.includes(needle), JSON.stringify(needle));
  });
});

describe('Tokenizer', () => {
  const tok = Tokenizer.fromDir(FIXTURE);

  test('special ids and vocabulary', () => {
    assert.equal(tok.vocabSize, 512);
    assert.equal(tok.eosId, 0);
    assert.equal(tok.tokenToId('<|user|>'), 2);
    assert.equal(tok.idToToken(4), '<|end|>');
    assert.equal(tok.tokenToId('no such token'), null);
    assert.equal(tok.idToToken(10_000), null);
    assert.deepEqual(tok.specialTokens(), {
      bos_token: '<|endoftext|>',
      eos_token: '<|endoftext|>',
      pad_token: '<|endoftext|>',
      unk_token: null,
    });
  });

  test('decode: empty input, special tokens, bad ids', () => {
    assert.equal(tok.decode([]), '');
    const ids = tok.encode('<|endoftext|>Hello<|endoftext|>');
    assert.equal(ids[0], 0);
    assert.equal(tok.decode(ids), '<|endoftext|>Hello<|endoftext|>');
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'Hello');
    assert.equal(tok.decode([0], { skipSpecialTokens: true }), '');
    assert.throws(() => tok.decode([512]), RangeError);
    assert.throws(() => tok.decode([-1]), RangeError);
    // no cleanup of " ." or " 's" (transformers' clean_up_tokenization_spaces) unless the config asks for it
    assert.equal(tok.decode(tok.encode("a . b 's ,")), "a . b 's ,");
  });

  test('save -> fromDir keeps the files and the behaviour', () => {
    const dir = tmpDir();
    tok.save(dir);
    for (const f of ['tokenizer.json', 'tokenizer_config.json'])
      assert.equal(readFileSync(join(dir, f), 'utf8'), readFileSync(join(FIXTURE, f), 'utf8'));
    const again = Tokenizer.fromDir(dir);
    assert.deepEqual(again.encode('Café 你好 😀'), tok.encode('Café 你好 😀'));
  });

  test('without tokenizer_config.json: well-known tokens give bos/eos, no chat template', () => {
    const dir = tmpDir();
    tok.save(dir);
    rmSync(join(dir, 'tokenizer_config.json'));
    assert.equal(Tokenizer.fromDir(dir).config, null);
    rmSync(join(dir, 'tokenizer.json'));
    assert.throws(() => Tokenizer.fromDir(dir), /tokenizer\.json: file not found: a model folder needs its tokenizer/);
    const bare = Tokenizer.fromJSON(readJson('tokenizer.json'));
    assert.equal(bare.eosId, 0);
    assert.equal(bare.bosId, 0);
    assert.equal(bare.padId, null);
    assert.throws(
      () => bare.applyChatTemplate([{ role: 'user', content: 'hi' }]),
      /tokenizer_config\.json: field "chat_template" is missing/,
    );
  });

  test('Llama-3-style file: Sequence(Split, ByteLevel) pre-tokenizer and a BOS post-processor', () => {
    const json = readJson('tokenizer.json') as TokenizerJson;
    const bos = { id: 512, content: '<|begin_of_text|>', special: true, normalized: false };
    json.added_tokens.push(bos);
    json.pre_tokenizer = {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: {
            Regex:
              "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
          },
          behavior: 'Isolated',
          invert: false,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    };
    json.post_processor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos.content, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [],
      special_tokens: { [bos.content]: { id: bos.content, ids: [512], tokens: [bos.content] } },
    };
    const llama = Tokenizer.fromJSON(json, { bos_token: bos.content, eos_token: '<|endoftext|>' });
    assert.equal(llama.bosId, 512);
    const text = "It'S 1234567 apples";
    const ids = llama.encode(text);
    assert.equal(ids[0], 512);
    assert.deepEqual(llama.encode(text, { addSpecialTokens: false }), ids.slice(1));
    assert.equal(llama.decode(ids.slice(1)), text);
    assert.equal(llama.decode(ids, { skipSpecialTokens: true }), text);
    // digits are split in groups of at most three
    const digitTokens = ids.map((id) => llama.idToToken(id)!).filter((t) => /\d/.test(t));
    assert.ok(
      digitTokens.every((t) => /^\d{1,3}$/.test(t)),
      digitTokens.join('|'),
    );
  });
});

describe('load errors name the file and the field', () => {
  const good = () => readJson('tokenizer.json') as Record<string, unknown> & TokenizerJson;
  const cases: [string, (j: Record<string, unknown> & TokenizerJson) => unknown, RegExp][] = [
    [
      'WordPiece model',
      (j) => ({ ...j, model: { ...j.model, type: 'WordPiece' } }),
      /^tokenizer\.json: field "model\.type" is "WordPiece"; only byte-level BPE is supported$/,
    ],
    ['Unigram model', (j) => ({ ...j, model: { type: 'Unigram', vocab: [] } }), /field "model\.type" is "Unigram"/],
    ['no model', (j) => ({ ...j, model: undefined }), /field "model" is missing/],
    ['vocab not an object', (j) => ({ ...j, model: { ...j.model, vocab: [] } }), /field "model\.vocab" is \[\]/],
    [
      'bad vocab id',
      (j) => ({ ...j, model: { ...j.model, vocab: { a: 1.5 } } }),
      /field "model\.vocab" maps "a" to 1\.5/,
    ],
    ['bad merge', (j) => ({ ...j, model: { ...j.model, merges: ['a b', 'abc'] } }), /field "model\.merges\[1\]"/],
    [
      'Metaspace (SentencePiece-style) pre-tokenizer',
      (j) => ({ ...j, pre_tokenizer: { type: 'Metaspace', replacement: '▁' } }),
      /field "pre_tokenizer" is \{"type":"Metaspace".*only byte-level BPE/,
    ],
    ['no decoder', (j) => ({ ...j, decoder: null }), /field "decoder" is null; only byte-level BPE/],
    ['byte fallback', (j) => ({ ...j, model: { ...j.model, byte_fallback: true } }), /field "model\.byte_fallback"/],
    ['bad added token', (j) => ({ ...j, added_tokens: [{ id: 'x', content: 'y' }] }), /field "added_tokens\[0\]"/],
    ['not an object', () => [1, 2], /^tokenizer\.json: must hold a JSON object/],
  ];
  for (const [name, mutate, pattern] of cases)
    test(name, () => {
      assert.throws(
        () => Tokenizer.fromJSON(mutate(good())),
        (e: unknown) => e instanceof TokenizerFileError && pattern.test(e.message),
      );
    });

  test('fromDir: missing directory, malformed JSON, a bad config', () => {
    const missing = join(tmp, 'nope');
    assert.throws(
      () => Tokenizer.fromDir(missing),
      (e: unknown) => e instanceof Error && e.message.startsWith(`${join(missing, 'tokenizer.json')}: file not found`),
    );
    const dir = tmpDir();
    trainBpe(['ab ab'], { vocabSize: 260 }).save(dir);
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
    assert.throws(() => Tokenizer.fromDir(dir), /tokenizer\.json: is not valid JSON/);
    trainBpe(['ab ab'], { vocabSize: 260 }).save(dir);
    writeFileSync(join(dir, 'tokenizer_config.json'), '{"eos_token": "<|nope|>"}');
    throwsMessage(
      () => Tokenizer.fromDir(dir),
      new RegExp(`^${join(dir, 'tokenizer_config.json')}: field "eos_token" is "<\\|nope\\|>", which is not in`),
    );
    writeFileSync(join(dir, 'tokenizer_config.json'), '{"eos_token": ');
    throwsMessage(() => Tokenizer.fromDir(dir), /tokenizer_config\.json: is not valid JSON/);
    writeFileSync(join(dir, 'tokenizer_config.json'), '{"eos_token": 7}');
    assert.throws(() => Tokenizer.fromDir(dir), /tokenizer_config\.json: field "eos_token" is 7/);
    writeFileSync(join(dir, 'tokenizer_config.json'), '{"chat_template": "{% for m in messages %}"}');
    assert.throws(
      () => Tokenizer.fromDir(dir),
      /tokenizer_config\.json: field "chat_template" is not a valid Jinja template/,
    );
  });

  test('fromJSON names the given source', () => {
    throwsMessage(
      () => Tokenizer.fromJSON({}, undefined, 'ckpt/tokenizer.json'),
      /^ckpt\/tokenizer\.json: field "model" is missing/,
    );
    throwsMessage(() => Tokenizer.fromJSON(good(), 'x', 'ckpt/tokenizer.json'), /^ckpt\/tokenizer_config\.json: must/);
  });
});

describe('chat templates', () => {
  const msgs = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi!' },
    { role: 'assistant', content: 'Hello.' },
    { role: 'user', content: 'Bye' },
  ];

  test('default template', () => {
    const tok = Tokenizer.fromDir(FIXTURE);
    const expected =
      '<|system|>\nBe brief.<|end|>\n<|user|>\nHi!<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nBye<|end|>\n';
    assert.equal(tok.applyChatTemplate(msgs), expected);
    assert.equal(tok.applyChatTemplate(msgs, { addGenerationPrompt: true }), `${expected}<|assistant|>\n`);
    // the markers are single special tokens
    const ids = tok.encode(tok.applyChatTemplate(msgs.slice(1, 2)));
    assert.deepEqual([ids[0], ids.at(-2)], [tok.tokenToId('<|user|>'), tok.tokenToId('<|end|>')]);
  });

  test('unknown roles and template errors name the file', () => {
    const tok = Tokenizer.fromDir(FIXTURE);
    const file = join(FIXTURE, 'tokenizer_config.json');
    assert.throws(
      () => tok.applyChatTemplate([{ role: 'robot', content: 'x' }]),
      (e: unknown) =>
        e instanceof TokenizerFileError &&
        e.message.startsWith(`${file}: field "chat_template"`) &&
        /robot/.test(e.message),
    );
    // allowed by the caller, but the default template itself refuses it
    assert.throws(
      () => tok.applyChatTemplate([{ role: 'tool', content: 'x' }]),
      /field "chat_template" failed to render: unknown role "tool"/,
    );
    assert.throws(() => tok.applyChatTemplate([{ role: 'user' } as never]), /messages\[0\] must be/);
  });

  const base = () => readJson('tokenizer.json');

  test('ChatML-style template (Qwen2, SmolLM)', () => {
    const template =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    const tok = Tokenizer.fromJSON(base(), { chat_template: template, eos_token: '<|endoftext|>' });
    assert.equal(
      tok.applyChatTemplate(msgs.slice(1, 3), { addGenerationPrompt: true }),
      '<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  test('Llama-3-style template uses bos_token, trim and loop.index0', () => {
    const template =
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}" +
      '{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}' +
      "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
    const tok = Tokenizer.fromJSON(base(), { chat_template: template, bos_token: '<|endoftext|>' });
    assert.equal(
      tok.applyChatTemplate(
        [
          { role: 'system', content: '  Be brief. ' },
          { role: 'user', content: 'Hi!' },
        ],
        { addGenerationPrompt: true },
      ),
      '<|endoftext|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  test('templates as a named list, chat_template.jinja beside the config, raise_exception', () => {
    const listed = Tokenizer.fromJSON(base(), {
      chat_template: [
        { name: 'tool_use', template: 'TOOLS' },
        { name: 'default', template: '{{ messages[0].content }}' },
      ],
    });
    assert.equal(listed.applyChatTemplate([{ role: 'user', content: 'x' }]), 'x');

    const dir = tmpDir();
    trainBpe(['ab ab'], { vocabSize: 260 }).save(dir);
    writeFileSync(join(dir, 'chat_template.jinja'), "{{ raise_exception('no system messages') }}");
    const tok = Tokenizer.fromDir(dir);
    throwsMessage(
      () => tok.applyChatTemplate([{ role: 'user', content: 'x' }]),
      new RegExp(`^${join(dir, 'chat_template.jinja')}: failed to render: no system messages`),
    );
  });
});
