// abCandidates: an A/B pair is two non-blank, different answers; a repeat or a blank is asked again, then refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { abCandidates, type CandidateSource } from '../src/store/index.js';

/** A source that answers from a script, one line per call, and counts its calls. */
const scripted = (lines: string[]) => {
  let i = 0;
  const source: CandidateSource & { calls: () => number } = {
    generate: async () => [lines[Math.min(i++, lines.length - 1)]],
    calls: () => i,
  };
  return source;
};

test('abCandidates asks again when the two models agree or one says nothing, and returns the first real pair', async () => {
  const a = scripted(['red', '  ', 'red', 'blue']);
  const b = scripted(['red', 'red', ' red ', 'red']);
  assert.deepEqual(await abCandidates(a, b, 'say a colour'), ['blue', 'red']);
  assert.deepEqual([a.calls(), b.calls()], [4, 4]);
});

test('abCandidates refuses after its retries when the models keep giving the same answer', async () => {
  const a = scripted(['red']);
  const b = scripted(['red ']);
  await assert.rejects(abCandidates(a, b, 'p', 2), /same answer 3 times; nothing to compare/);
  assert.equal(a.calls(), 3);
});
