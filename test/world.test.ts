import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  abstains,
  answerStats,
  buildWorld,
  CONSTRAINT_PHRASINGS,
  type Constraint,
  candidateResponse,
  FAMILIES,
  fewShotExamples,
  fewShotPrompt,
  generateTask,
  KINDS,
  MAX_ANSWER_CHARS,
  MAX_PROMPT_CHARS,
  pretrainCorpus,
  SPLITS,
  type Task,
  TOWNS,
  tasksByPrompt,
  UNKNOWN_TOWNS_HELDOUT,
  UNKNOWN_TOWNS_TRAIN,
} from '../src/demo/world/index.js';

const UNKNOWN_TOWNS = [...UNKNOWN_TOWNS_TRAIN, ...UNKNOWN_TOWNS_HELDOUT];

import { Rng } from '../src/tensor/random.js';

const small = { sizes: { sft: 150, rm: 100, ppo: 100, eval: 80 } };

function manyTasks(seed: number, n: number, constraintRate: number, unanswerableRate = 0): Task[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) =>
    generateTask(rng, { phrasing: i % 3 === 0 ? 'heldout' : 'train', constraintRate, unanswerableRate }),
  );
}

test('world: same seed gives the same splits; another seed does not', () => {
  const a = buildWorld(11, small);
  const b = buildWorld(11, small);
  const c = buildWorld(12, small);
  for (const s of SPLITS) {
    assert.equal(a[s].length, small.sizes[s]);
    assert.deepEqual(
      a[s].map((t) => [t.id, t.prompt, t.reference]),
      b[s].map((t) => [t.id, t.prompt, t.reference]),
    );
  }
  assert.notDeepEqual(
    a.sft.map((t) => t.prompt),
    c.sft.map((t) => t.prompt),
  );
});

test('world: splits share no prompt; the evaluation split holds phrasings training never saw', () => {
  const w = buildWorld(3, small);
  const owner = new Map<string, string>();
  for (const s of SPLITS) {
    for (const t of w[s]) {
      assert.ok(!owner.has(t.prompt), `"${t.prompt}" in ${owner.get(t.prompt)} and ${s}`);
      owner.set(t.prompt, s);
    }
  }
  const trainingPhrasings = new Set<string>();
  for (const s of ['sft', 'rm', 'ppo'] as const) {
    for (const t of w[s]) {
      assert.equal(t.heldoutPhrasing, false, t.prompt);
      for (const id of t.phrasingId.split('+')) trainingPhrasings.add(id);
    }
  }
  const unseen = w.eval.filter((t) => t.heldoutPhrasing);
  assert.equal(unseen.length, 40);
  for (const t of unseen) assert.ok(!trainingPhrasings.has(t.phrasingId.split('+')[0]), t.phrasingId);
  // Held-out constraint phrasings never reach training either.
  const heldoutConstraintIds = Object.values(CONSTRAINT_PHRASINGS)
    .flat()
    .filter((p) => p.heldout)
    .map((p) => p.id);
  for (const id of heldoutConstraintIds) assert.ok(!trainingPhrasings.has(id), id);
  // Every family appears in every split of this size.
  for (const s of SPLITS)
    for (const f of FAMILIES)
      assert.ok(
        w[s].some((t) => t.family === f),
        `${f} in ${s}`,
      );
  assert.equal(tasksByPrompt(w.eval).get(w.eval[5].prompt), w.eval[5]);
});

test('world: every family has at least four training phrasings and held-out ones', () => {
  for (const f of FAMILIES) {
    for (const k of KINDS.filter((k) => k.family === f)) {
      assert.ok(k.phrasings.filter((p) => !p.heldout).length >= 4, k.name);
      assert.ok(
        k.phrasings.some((p) => p.heldout),
        k.name,
      );
    }
  }
});

test('world: prompts and answers stay short', () => {
  for (const t of manyTasks(5, 2000, 0.5, 0.2)) {
    assert.ok(t.prompt.length <= MAX_PROMPT_CHARS, t.prompt);
    assert.ok(t.reference.length <= MAX_ANSWER_CHARS, t.reference);
    for (const v of t.variants) assert.ok(v.length <= MAX_ANSWER_CHARS, v);
  }
});

test('world: check() accepts references and variants, rejects wrong answers, broken formats and silence', () => {
  const combos = new Set<string>();
  for (const t of manyTasks(7, 3000, 0.5, 0.15)) {
    combos.add(`${t.kind}+${t.constraint}`);
    const ref = t.check(t.reference);
    assert.ok(ref.correct && ref.constraintsMet && ref.attempted, `${t.prompt} -> ${t.reference}: ${ref.details}`);
    for (const v of t.variants) {
      const r = t.check(v);
      assert.ok(r.correct && r.constraintsMet, `${t.prompt} -> ${v}: ${r.details}`);
    }
    assert.ok(t.wrong.length >= 2, t.prompt);
    for (const w of t.wrong) {
      const r = t.check(w);
      assert.ok(!r.correct && r.attempted, `${t.prompt} -> wrong "${w}": passed, or not read as an answer`);
    }
    if (t.constraint) {
      const broken = candidateResponse(t, 'format', new Rng(1));
      const r = t.check(broken);
      assert.ok(r.correct && !r.constraintsMet, `${t.prompt} -> "${broken}": ${r.details}`);
    }
    const empty = t.check('  ');
    assert.ok(!empty.correct && !empty.constraintsMet && !empty.attempted);
    // Prose that answers nothing is no attempt at an answer.
    assert.equal(t.check('is famous for.').attempted, false, t.prompt);
  }
  // Every kind was seen with and without each constraint it allows.
  for (const k of KINDS) {
    for (const c of [null, ...k.constraints] as (Constraint | null)[]) assert.ok(combos.has(`${k.name}+${c}`));
  }
});

test('world: questions about towns that do not exist — the world knows, evaluation asks about unseen names', () => {
  const w = buildWorld(5, { sizes: { sft: 600, rm: 200, ppo: 200, eval: 300 }, unanswerableRate: 0.15 });
  const corpus = pretrainCorpus(new Rng(1), { sentences: 4000 }).join(' ');
  const names = (tasks: Task[]) =>
    new Set(tasks.filter((t) => !t.answerable).map((t) => UNKNOWN_TOWNS.find((n) => t.prompt.includes(n))!));
  const trainNames = names([...w.sft, ...w.rm, ...w.ppo]);
  const evalNames = names(w.eval);
  assert.ok(trainNames.size >= 10 && evalNames.size >= 10, `${trainNames.size} / ${evalNames.size} names`);
  for (const n of evalNames) assert.ok(!trainNames.has(n), `${n} asked about in training and evaluation`);
  for (const n of UNKNOWN_TOWNS) {
    assert.ok(!TOWNS.some((t) => t.name === n), `${n} is a town`);
    assert.doesNotMatch(corpus, new RegExp(`\\b${n}\\b`), `the corpus mentions ${n}`);
  }
  const share = w.sft.filter((t) => !t.answerable).length / w.sft.length;
  assert.ok(share > 0.1 && share < 0.2, `unanswerable share ${share}`);
  assert.ok(
    w.eval.some((t) => !t.answerable && t.heldoutPhrasing) && w.eval.some((t) => !t.answerable && !t.heldoutPhrasing),
  );

  for (const t of w.eval.filter((x) => !x.answerable)) {
    assert.equal(t.family, 'facts');
    assert.equal(t.constraint, null);
    assert.ok(abstains(t.reference), t.reference);
    for (const v of t.variants) assert.ok(t.check(v).correct, `${t.prompt} -> ${v}`);
    for (const invented of t.wrong) {
      const r = t.check(invented);
      assert.ok(!r.correct && r.attempted, `${t.prompt} -> invented "${invented}"`);
      assert.ok(!t.check(`I do not know. ${invented}`).correct, 'an abstention that still invents is wrong');
    }
  }
  const known = w.eval.find((t) => t.answerable && t.kind === 'river')!;
  const dunno = known.check('I do not know of a town called that.');
  assert.ok(!dunno.correct && !dunno.attempted, 'abstaining on a question with an answer is no answer');

  const unknown = w.eval.filter((t) => !t.answerable).slice(0, 4);
  const answerable = w.eval.filter((t) => t.answerable).slice(0, 4);
  const s = answerStats(
    [...unknown, ...answerable],
    [
      unknown[0].reference,
      unknown[1].wrong[0],
      unknown[2].wrong[0],
      '',
      'I do not know.',
      ...answerable.slice(1).map((t) => t.reference),
    ],
  );
  assert.equal(s.unanswerable, 4);
  assert.equal(s.abstain, 0.25);
  assert.equal(s.hallucinate, 0.5);
  assert.equal(s.overAbstain, 0.25);
  assert.equal(s.correct, 4 / 8);
});

test('world: references agree with an independent reading of the prompt', () => {
  const ops: Record<string, (a: number, b: number) => number> = {
    plus: (a, b) => a + b,
    '+': (a, b) => a + b,
    minus: (a, b) => a - b,
    '-': (a, b) => a - b,
    times: (a, b) => a * b,
    '*': (a, b) => a * b,
  };
  let seen = 0;
  for (const t of manyTasks(9, 1500, 0)) {
    if (t.family === 'arithmetic') {
      const m = t.prompt.match(/(\d+) (plus|minus|times|\+|-|\*) (\d+)/)!;
      assert.equal(t.reference, String(ops[m[2]](Number(m[1]), Number(m[3]))), t.prompt);
      seen++;
    } else if (t.kind === 'river') {
      const town = TOWNS.find((x) => new RegExp(`\\b${x.name}\\b`).test(t.prompt))!;
      assert.equal(t.reference, town.river, t.prompt);
      seen++;
    } else if (t.kind === 'reverse') {
      const word = t.prompt
        .match(/\b([a-z]{4,})\b(?=[ .?,])/g)!
        .find((w) => !['word', 'letters', 'letter'].includes(w))!;
      assert.equal(t.reference, word.split('').reverse().join(''), t.prompt);
      seen++;
    } else if (t.kind === 'sort_up') {
      const nums = t.prompt.match(/\d+/g)!.map(Number);
      assert.equal(t.reference, nums.sort((a, b) => a - b).join(', '), t.prompt);
      seen++;
    }
  }
  assert.ok(seen > 300);
});

test('world: check() reads numbers, words and lists strictly', () => {
  const rng = new Rng(4);
  let arith: Task;
  do arith = generateTask(rng, { phrasing: 'train', family: 'arithmetic', constraintRate: 0 });
  while (arith.kind !== 'plus' || Number(arith.reference) < 3);
  const v = Number(arith.reference);
  assert.ok(arith.check(`The answer is ${v}.`).correct);
  assert.ok(!arith.check(`${v} or ${v + 1}`).correct);
  assert.ok(!arith.check(`${v + 1}`).correct);
  assert.ok(!arith.check('twelve').correct);

  let size: Task;
  do size = generateTask(rng, { phrasing: 'train', family: 'facts', constraintRate: 0 });
  while (size.kind !== 'size');
  assert.ok(size.check(`It is a ${size.reference}.`).correct);
  assert.ok(!size.check('a village, a town or a city').correct, 'listing every option is not an answer');
  const subject = TOWNS.find((t) => size.prompt.includes(t.name))!;
  const other = TOWNS.find((t) => t !== subject && t.size === subject.size)!;
  assert.ok(size.check(`${subject.name} is a ${subject.size}.`).correct);
  assert.ok(!size.check(`${other.name} is a ${subject.size}.`).correct, 'the right size for another town is no answer');

  let towns: Task;
  do towns = generateTask(rng, { phrasing: 'train', family: 'facts', constraintRate: 1 });
  while (towns.kind !== 'towns');
  assert.equal(towns.constraint, 'bullets');
  assert.match(towns.reference, /^- \w+\n- \w+\n- \w+$/);
  const [a, b, c] = towns.reference.split('\n').map((l) => l.slice(2));
  assert.ok(!towns.check(`- ${a}\n- ${b}\n- ${c}\n- ${a}`).constraintsMet, 'four bullets are not three');
  assert.ok(!towns.check(`- ${a}\n- ${a}\n- ${b}`).correct, 'a town named twice counts once');
});

test('world: an answer of the wrong kind is no attempt', () => {
  const tasks = manyTasks(8, 600, 0);
  const of = (kind: string) => tasks.find((t) => t.kind === kind)!;
  const river = of('river');
  assert.equal(river.check('7').attempted, false);
  assert.equal(river.check('Cray is a town.').attempted, false);
  assert.equal(of('food').check('Vey').attempted, false);
  assert.equal(of('times').check('salt fish').attempted, false);
  assert.equal(of('towns').check('- 4\n- 5\n- 6').attempted, false);
  const reverse = of('reverse');
  assert.equal(reverse.check(reverse.reference.slice(0, 2)).attempted, false, 'too short to spell the word');
  assert.equal(reverse.check(`I think ${reverse.reference}`).attempted, true);
});

test('corpus: deterministic prose that states every town fact, plus quiz pages but no instructions', () => {
  const docs = pretrainCorpus(new Rng(21), { sentences: 1500 });
  assert.deepEqual(docs, pretrainCorpus(new Rng(21), { sentences: 1500 }));
  assert.notDeepEqual(docs, pretrainCorpus(new Rng(22), { sentences: 1500 }));
  const quizzes = docs.filter((d) => d.startsWith('Q: '));
  const prose = docs.filter((d) => !d.startsWith('Q: '));
  const pairs = quizzes.flatMap((d) => d.split(/\n(?=Q: )/));
  const sentences = prose.flatMap((d) => d.split(/(?<=\.) /));
  assert.equal(sentences.length + pairs.length, 1500);
  // Quiz pages: a few (as web text has them), each pair a question line and its answer line.
  assert.ok(quizzes.length > 0.03 * docs.length && quizzes.length < 0.2 * docs.length, `${quizzes.length} quizzes`);
  for (const p of pairs) assert.match(p, /^Q: [^\n]+\?\nA: [^\n]+\.$/);
  for (const t of TOWNS) {
    assert.ok(
      sentences.some((s) => s.includes(t.name) && s.includes(t.river) && !s.includes(',')),
      `${t.name} on ${t.river}`,
    );
    assert.ok(
      sentences.some((s) => s.includes(t.name) && s.includes(t.food)),
      `${t.name} known for ${t.food}`,
    );
  }
  // No instruction-style text: prose asks nothing, and no sentence or quiz question opens like a prompt or a
  // constraint of the tasks.
  const openers = new Set(
    [...KINDS.flatMap((k) => k.phrasings), ...Object.values(CONSTRAINT_PHRASINGS).flat()]
      .map((p) => p.template.split(' ')[0])
      .filter((w) => /^[A-Z][a-z]+$/.test(w)),
  );
  assert.ok(openers.has('Sort') && openers.has('Reverse') && openers.has('Answer'));
  for (const s of sentences) {
    assert.ok(!s.includes('?') && !/\b[QA]:/.test(s), s);
    assert.ok(!openers.has(s.split(' ')[0]), `instruction-like: ${s}`);
    assert.ok(s.endsWith('.'), s);
  }
  const taskPrompts = new Set(
    KINDS.flatMap((k) => k.phrasings.map((p) => p.template.split(' ').slice(0, 3).join(' '))),
  );
  for (const p of pairs) assert.ok(!taskPrompts.has(p.slice(3).split(' ').slice(0, 3).join(' ')), `task wording: ${p}`);
  assert.throws(() => pretrainCorpus(new Rng(1), { sentences: 0 }), /sentences/);
});

test('few-shot prompt: solved examples of the same kind, then the question', () => {
  const w = buildWorld(2, small);
  const task = w.eval[0];
  const examples = fewShotExamples(task, w.sft, new Rng(3), 2);
  assert.equal(examples.length, 2);
  assert.notEqual(examples[0], examples[1]);
  for (const e of examples) assert.equal(e.family, task.family);
  const prompt = fewShotPrompt(task, examples);
  assert.ok(prompt.endsWith(`Q: ${task.prompt}\nA:`));
  assert.ok(prompt.startsWith(`Q: ${examples[0].prompt}\nA: ${examples[0].reference}\n\n`));
  assert.throws(() => fewShotExamples(task, [], new Rng(3), 2), /pool/);
});

test('answerStats: fractions right, in format and both', () => {
  const tasks = buildWorld(4, small)
    .eval.filter((t) => t.constraint !== null)
    .slice(0, 10);
  const answers = tasks.map((t, i) =>
    i < 4 ? t.reference : i < 7 ? candidateResponse(t, 'format', new Rng(i)) : t.wrong[0],
  );
  const s = answerStats(tasks, answers);
  assert.equal(s.n, 10);
  assert.equal(s.correct, 0.7);
  assert.equal(s.both, 0.4);
  assert.equal(s.constraintsMet, 0.7, 'wrong answers come in the right format');
  assert.equal(s.meanChars, answers.join('').length / 10);
  assert.throws(() => answerStats(tasks, []), /answers/);
});

test('world: bad options are refused', () => {
  assert.throws(() => buildWorld(1, { sizes: { sft: -1 } }), /sizes\.sft/);
  assert.throws(() => buildWorld(1, { evalHeldoutFraction: 2 }), /evalHeldoutFraction/);
});
