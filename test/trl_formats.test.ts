// The preference, demonstration and prompt formats TRL users bring: explicit and implicit prompts, as texts or as
// conversations (Anthropic HH-RLHF raw, trl-lib's conversational sets), read by the trainers and refused by the
// store where it cannot keep them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeRankings, loadCausalLM, readComparisons, readDemonstrations } from '../src/rlhf/data.js';
import { formatLineError, parseJsonl } from '../src/store/jsonl.js';
import { Formatter } from '../src/tokenizer/index.js';
import { writeJsonl, writeTinyModel } from './helpers/tiny_lm.js';

const trainer = { maxTextChars: 10_000, multiTurn: true };
const store = { maxTextChars: 10_000 };
const line = (o: unknown) => JSON.stringify(o);
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

test('pairs: an implicit text prompt is the shared beginning, cut where the answers start (HH-RLHF raw)', () => {
  const hh = {
    chosen: '\n\nHuman: What is two plus two?\n\nAssistant: It is four.',
    rejected: '\n\nHuman: What is two plus two?\n\nAssistant: It is five, I think.',
  };
  const r = parseJsonl('pairwise', line(hh), trainer, 'hh.jsonl');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.records[0], {
    prompt: '\n\nHuman: What is two plus two?\n\nAssistant: It is',
    chosen: ' four.',
    rejected: ' five, I think.',
  });
  // One answer extending the other still splits at a word.
  const longer = parseJsonl(
    'pairwise',
    line({ chosen: 'Q: colour? A: red', rejected: 'Q: colour? A: red, or blue' }),
    trainer,
    'f',
  );
  assert.deepEqual(longer.records[0], { prompt: 'Q: colour? A:', chosen: ' red', rejected: ' red, or blue' });
  const same = parseJsonl('pairwise', line({ chosen: 'abc', rejected: 'abc' }), trainer, 'f');
  assert.match(formatLineError(same.errors[0]), /f:1: "chosen" and "rejected" are the same text/);
  const none = parseJsonl('pairwise', line({ chosen: 'yes', rejected: 'no' }), trainer, 'f');
  assert.match(none.errors[0].message, /share no beginning.*add "prompt"/);
});

test('pairs: conversational, with a prompt field or as whole conversations sharing all but the answer', () => {
  const explicit = { prompt: [user('Name a colour.')], chosen: [assistant('Red.')], rejected: [assistant('Hmm.')] };
  assert.deepEqual(parseJsonl('pairwise', line(explicit), store, 'f').records[0], {
    prompt: 'Name a colour.',
    chosen: 'Red.',
    rejected: 'Hmm.',
  });
  const history = [{ role: 'system', content: 'Be brief.' }, user('Hi'), assistant('Hello.'), user('Name a colour.')];
  const implicit = { chosen: [...history, assistant('Red.')], rejected: [...history, assistant('I cannot.')] };
  assert.deepEqual(parseJsonl('pairwise', line(implicit), trainer, 'f').records[0], {
    prompt: 'Name a colour.',
    chosen: 'Red.',
    rejected: 'I cannot.',
    context: history,
  });
  // The store keeps one prompt per pair: a multi-turn conversation is refused there, with the reason.
  assert.match(parseJsonl('pairwise', line(implicit), store, 'f').errors[0].message, /only one user turn/);
  const diverging = { chosen: [user('A?'), assistant('a')], rejected: [user('B?'), assistant('b')] };
  assert.match(
    parseJsonl('pairwise', line(diverging), trainer, 'f').errors[0].message,
    /share every turn but the last/,
  );
  const mixed = { prompt: 'A?', chosen: [assistant('a')], rejected: 'b' };
  assert.match(parseJsonl('pairwise', line(mixed), trainer, 'f').errors[0].message, /must both be lists/);
  const badRole = { chosen: [user('A?'), user('a')], rejected: [user('A?'), assistant('b')] };
  assert.match(
    parseJsonl('pairwise', line(badRole), trainer, 'f').errors[0].message,
    /"chosen\[1\]\.role" must be "assistant"/,
  );
});

test('demonstrations and prompts: conversational forms, and a plain "text" line is pointed to pretraining', () => {
  const d = parseJsonl(
    'demonstrations',
    line({ prompt: [user('Say hi.')], completion: [assistant('Hi!')] }),
    store,
    'f',
  );
  assert.deepEqual(d.records[0], { prompt: 'Say hi.', completion: 'Hi!', split: undefined });
  const t = parseJsonl('demonstrations', line({ text: 'Once upon a time' }), store, 'f');
  assert.match(t.errors[0].message, /"text" lines are plain text.*instructkit pretrain --corpus/);
  assert.equal(parseJsonl('prompts', line({ prompt: [user('Go.')] }), store, 'f').records[0].prompt, 'Go.');
  const twoTurns = parseJsonl('prompts', line({ prompt: [user('a'), assistant('b')] }), store, 'f');
  assert.match(twoTurns.errors[0].message, /must hold one \{"role":"user"/);
});

test('a conversational pair trains on the whole conversation rendered with the chat template', () => {
  const root = mkdtempSync(join(tmpdir(), 'ik-trl-'));
  try {
    const dir = writeTinyModel(join(root, 'model'));
    const { tokenizer } = loadCausalLM(dir);
    const fmt = new Formatter(tokenizer, dir);
    const file = writeJsonl(join(root, 'pairs.jsonl'), [
      {
        chosen: [user('say red'), assistant('red'), user('say blue'), assistant('blue')],
        rejected: [user('say red'), assistant('red'), user('say blue'), assistant('gray')],
      },
      { prompt: 'say teal', chosen: 'teal', rejected: 'pink' },
    ]);
    const read = readComparisons(file);
    const examples = encodeRankings(read.records, fmt, 48).records;
    const promptOf = (i: number) => {
      const [a, b] = examples[i].sequences;
      let n = 0;
      while (a[n] === b[n]) n++;
      return tokenizer.decode(a.slice(0, n));
    };
    assert.equal(
      promptOf(0),
      '<|user|>\nsay red<|end|>\n<|assistant|>\nred<|end|>\n<|user|>\nsay blue<|end|>\n<|assistant|>\n',
    );
    assert.equal(promptOf(1), '<|user|>\nsay teal<|end|>\n<|assistant|>\n');
    assert.deepEqual(examples[0].ranking, [0, 1]);
    // Demonstrations in TRL's conversational prompt-completion form read the same way.
    const demos = writeJsonl(join(root, 'demos.jsonl'), [
      { prompt: [user('say gold')], completion: [assistant('gold')] },
    ]);
    assert.deepEqual(
      readDemonstrations(demos).records.map((r) => [r.prompt, r.completion]),
      [['say gold', 'gold']],
    );
  } finally {
    rmSync(root, { recursive: true });
  }
});
