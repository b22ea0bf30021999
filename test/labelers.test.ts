import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pairKindAccuracy } from '../src/demo/evaluate.js';
import {
  agreementBetween,
  demonstrationRecords,
  HEDGES,
  HELDOUT_POOL_NAMES,
  heldoutPool,
  heldoutPools,
  type LabelerWeights,
  measureAgreement,
  OPENERS,
  PADS,
  PLAIN_STYLE,
  promptRecords,
  rankingRecords,
  responseFeatures,
  SimulatedLabeler,
  TRAINING_WEIGHTS,
  trainingPool,
  type WritingStyle,
  wilsonInterval,
  winRate,
  writeDemonstration,
  writeJsonlFile,
} from '../src/demo/labelers/index.js';
import { buildWorld, candidateResponses, type Task } from '../src/demo/world/index.js';
import { parseJsonl, rankingLabelError } from '../src/store/index.js';
import { Rng } from '../src/tensor/random.js';

const world = buildWorld(1, { sizes: { sft: 120, rm: 300, ppo: 20, eval: 100 } });

function candidateSets(tasks: readonly Task[], seed: number, k = 4): string[][] {
  const rng = new Rng(seed);
  return tasks.map((t) => candidateResponses(t, rng, k).map((c) => c.text));
}

test('labelers: rankings put correct answers above wrong ones and reference above empty', () => {
  const pool = trainingPool(1);
  const sets = candidateSets(world.rm, 5);
  let above = 0;
  let pairs = 0;
  world.rm.forEach((task, t) => {
    const label = pool[t % pool.length].rank(task, sets[t]);
    const pos = new Map(label.ranking.map((idx, p) => [idx, p]));
    const correct = sets[t].map((r) => task.check(r).correct);
    for (let i = 0; i < correct.length; i++) {
      for (let j = 0; j < correct.length; j++) {
        if (correct[i] && !correct[j]) {
          pairs++;
          if (pos.get(i)! < pos.get(j)!) above++;
        }
      }
    }
  });
  assert.ok(pairs > 200);
  assert.ok(above / pairs > 0.85, `correct above incorrect in ${above}/${pairs}`);

  const judge = pool[0];
  let refLikert = 0;
  let wrongLikert = 0;
  let beatsEmpty = 0;
  for (const task of world.rm.slice(0, 100)) {
    refLikert += judge.score(task, task.reference).likert;
    wrongLikert += judge.score(task, task.wrong[0]).likert;
    if (judge.compare(task, task.reference, '') === 'a') beatsEmpty++;
  }
  assert.ok(refLikert > wrongLikert + 100, `mean likert ${refLikert / 100} vs ${wrongLikert / 100}`);
  // Noisy, like people: a rare slip, no more.
  assert.ok(beatsEmpty >= 97, `reference beat an empty answer ${beatsEmpty}/100 times`);
});

test('labelers: concision and tone count when content is equal', () => {
  const quiet: LabelerWeights = { ...TRAINING_WEIGHTS, noise: 0 };
  const judge = new SimulatedLabeler('q', 'train', quiet, 1);
  const task = world.sft.find((t) => t.constraint === null && t.family === 'arithmetic')!;
  const rambling = `Well, let me think. The answer is ${task.reference}. I hope that helps!`;
  assert.equal(task.check(rambling).correct, true);
  assert.equal(judge.compare(task, task.reference, rambling), 'a');
  assert.equal(judge.compare(task, `${task.reference} ${task.reference} ${task.reference}`, task.reference), 'b');
});

test('labelers: ranking labels are valid store labels with flags', () => {
  const pool = trainingPool(2);
  const facts = world.rm.filter((t) => t.family === 'facts' && t.constraint !== null).slice(0, 5);
  assert.ok(facts.length > 0);
  for (const task of facts) {
    const responses = [task.reference, task.wrong[0], '', `${task.reference} ${task.reference}`.toLowerCase()];
    const label = pool[0].rank(task, responses);
    assert.equal(rankingLabelError(label, responses.length), null);
    assert.ok(label.likert.every((s) => Number.isInteger(s) && s >= 1 && s <= 7));
    assert.ok(label.flags.hallucination?.includes(1), 'wrong fact flagged');
    assert.ok(!label.flags.hallucination?.includes(0));
    assert.ok(label.flags.fails_to_follow_instruction?.includes(2), 'empty response flagged');
    assert.ok(!label.flags.fails_to_follow_instruction?.includes(0));
  }
});

test('labelers: pools are deterministic and the held-out pool weighs differently', () => {
  const a = trainingPool(7);
  const b = trainingPool(7);
  assert.deepEqual(
    a.map((l) => l.weights),
    b.map((l) => l.weights),
  );
  const sets = candidateSets(world.rm.slice(0, 20), 1);
  world.rm.slice(0, 20).forEach((task, i) => {
    assert.deepEqual(a[0].rank(task, sets[i]), b[0].rank(task, sets[i]));
  });
  const held = heldoutPool(7);
  assert.ok(held.every((l) => l.group === 'heldout') && a.every((l) => l.group === 'train'));
  assert.equal(new Set([...a, ...held].map((l) => l.id)).size, a.length + held.length);
  const mean = (pool: SimulatedLabeler[], key: keyof LabelerWeights) =>
    pool.reduce((s, l) => s + l.weights[key], 0) / pool.length;
  assert.ok(mean(held, 'tone') > mean(a, 'tone'));
  assert.ok(mean(held, 'concision') < mean(a, 'concision'));
  assert.throws(() => trainingPool(1, { size: 0 }), /size/);
  assert.throws(() => new SimulatedLabeler('x', 'train', { ...TRAINING_WEIGHTS, noise: -1 }, 1), /noise/);
});

// Ranked sample sets of a real demo run (small, seed 0): model outputs, with their many near-ties.
const demoSamples = JSON.parse(readFileSync(new URL('../../test/fixtures/demo_samples.json', import.meta.url), 'utf8'));

test('labelers: pairwise agreement on model samples lands near the paper’s 73 %', () => {
  const sampleWorld = buildWorld(demoSamples.world.seed, { sizes: demoSamples.world.sizes });
  const byPrompt = new Map(sampleWorld.rm.map((t) => [t.prompt, t]));
  const sets: { prompt: string; responses: string[] }[] = demoSamples.sets;
  const tasks = sets.map((s) => byPrompt.get(s.prompt)!);
  assert.ok(
    tasks.every((t) => t !== undefined),
    'every fixture prompt is an RM prompt of its world',
  );
  const responses = sets.map((s) => s.responses);
  const train = measureAgreement(trainingPool(1), tasks, responses);
  const held = measureAgreement(heldoutPool(1), tasks, responses);
  const cross = agreementBetween(trainingPool(1), heldoutPool(1), tasks, responses);
  for (const [name, r] of [
    ['training', train],
    ['held-out', held],
    ['training × held-out', cross],
  ] as const) {
    assert.ok(r.agreement >= 0.68 && r.agreement <= 0.78, `${name} agreement ${r.agreement.toFixed(3)}`);
  }
  assert.equal(train.pairs.length, 10);
  assert.equal(cross.pairs.length, 25);

  // Synthetic candidates differ more plainly than model samples (fewer near-ties), so labelers agree more on them.
  const synthetic = candidateSets(world.rm, 5);
  const onSynthetic = measureAgreement(trainingPool(1), world.rm, synthetic);
  assert.ok(onSynthetic.agreement > train.agreement, `synthetic ${onSynthetic.agreement.toFixed(3)}`);
  assert.equal(onSynthetic.comparisons, world.rm.length * 6);

  // Noise-free labelers with the same weights always agree.
  const clones = [0, 1, 2].map((i) => new SimulatedLabeler(`c${i}`, 'train', { ...TRAINING_WEIGHTS, noise: 0 }, i));
  assert.equal(measureAgreement(clones, world.rm.slice(0, 50), synthetic.slice(0, 50)).agreement, 1);
  assert.throws(() => measureAgreement(clones.slice(0, 1), world.rm, synthetic), /two labelers/);
  assert.throws(() => measureAgreement(clones, world.rm, synthetic.slice(1)), /response sets/);
});

test('win rate: identical answers ≈ 50 %, clear winners win, ties split, Wilson interval', () => {
  const judges = heldoutPool(3);
  const tasks = world.eval;
  const refs = tasks.map((t) => t.reference);
  const same = winRate(judges, tasks, refs, refs);
  assert.equal(same.winRate, 0.5);
  assert.ok(same.lo < 0.5 && same.hi > 0.5);
  assert.equal(same.ties, tasks.length);

  // Different but equally good answers: a coin flip within the interval.
  const other = tasks.map((t) => (t.variants.length > 0 ? t.variants[0] : t.reference));
  const near = winRate(judges, tasks, refs, other);
  assert.ok(near.lo < 0.5 + 0.25 && near.hi > 0.5 - 0.25);

  const wrong = tasks.map((t) => t.wrong[0]);
  const clear = winRate(judges, tasks, refs, wrong);
  assert.ok(clear.winRate > 0.9 && clear.lo > 0.8, JSON.stringify(clear));
  const reverse = winRate(judges, tasks, wrong, refs);
  assert.ok(reverse.winRate < 0.1);

  // Half the tasks tie, the other half A wins outright against an empty answer: 0.5 + 0.25.
  const half = tasks.map((t, i) => (i % 2 === 0 ? t.reference : ''));
  const mixed = winRate(judges, tasks, refs, half);
  assert.equal(mixed.ties, tasks.length / 2);
  assert.equal(mixed.winRate, 0.75);

  // Wilson 95 % for 50/100 is [0.4038, 0.5962]; for 0/10, [0, 0.2775].
  const w = wilsonInterval(0.5, 100);
  assert.ok(Math.abs(w.lo - 0.4038) < 1e-3 && Math.abs(w.hi - 0.5962) < 1e-3);
  const z = wilsonInterval(0, 10);
  assert.ok(z.lo === 0 && Math.abs(z.hi - 0.2775) < 1e-3);
  assert.throws(() => winRate(judges, tasks, refs, wrong.slice(1)), /answers/);
});

test('writing: habits decorate an answer without changing it; slips and overlooked constraints break it', () => {
  const rng = new Rng(3);
  const free = world.sft.filter((t) => t.constraint === null);
  const constrained = world.sft.filter((t) => t.constraint !== null);
  const every: WritingStyle = { ...PLAIN_STYLE, opener: 1, hedge: 1, pad: 1, phrases: PLAIN_STYLE.phrases };
  for (const t of world.sft) assert.equal(writeDemonstration(t, PLAIN_STYLE, rng), t.reference);
  for (const t of free) {
    const d = writeDemonstration(t, every, rng);
    const r = t.check(d);
    assert.ok(r.correct && r.constraintsMet && r.attempted, `${t.prompt} -> ${d}: ${r.details}`);
    const f = responseFeatures(t, d);
    assert.ok(f.polite === 1 && f.tone < 1 && f.concision < 0.5, `${d}: ${JSON.stringify(f)}`);
    assert.ok(d.startsWith(every.phrases.opener) && d.endsWith(every.phrases.pad), d);
  }
  // A format constraint leaves no room for habits, unless the writer overlooks it.
  for (const t of constrained) {
    assert.equal(writeDemonstration(t, every, rng), t.reference);
    const overlooked = writeDemonstration(t, { ...PLAIN_STYLE, ignoreConstraint: 1 }, rng);
    assert.equal(t.check(overlooked).constraintsMet, false, `${t.prompt} -> ${overlooked}`);
  }
  for (const t of world.sft.filter((x) => x.answerable && x.wrong.length > 0))
    assert.equal(t.check(writeDemonstration(t, { ...PLAIN_STYLE, slip: 1 }, rng)).correct, false, t.prompt);
  assert.throws(() => new SimulatedLabeler('x', 'train', TRAINING_WEIGHTS, 1, { ...PLAIN_STYLE, hedge: 2 }), /hedge/);
});

test('labelers: training writers have habits of their own, and mostly get the answer right', () => {
  const pool = trainingPool(4);
  const rng = new Rng(9);
  const demos = world.sft.map((t, i) => pool[i % pool.length].demonstrate(t, rng));
  const share = (pred: (d: string, t: Task) => boolean) =>
    demos.filter((d, i) => pred(d, world.sft[i])).length / demos.length;
  // Slips are rare; inventing an answer about a town that does not exist is not (counted apart).
  const correct = share((d, t) => !t.answerable || t.check(d).correct);
  const invented = share((d, t) => !t.answerable && !t.check(d).correct);
  assert.ok(invented > 0, 'some writers invent answers about towns that do not exist');
  const followed = share((d, t) => t.check(d).constraintsMet);
  assert.ok(correct > 0.88 && correct < 1, `correct ${correct}`);
  assert.ok(followed > 0.9 && followed < 1, `constraints met ${followed}`);
  const plain = share((d, t) => d === t.reference);
  const hedged = share((d, t) => responseFeatures(t, d).tone < 1);
  assert.ok(plain > 0.2 && plain < 0.6, `plain ${plain}`);
  assert.ok(hedged > 0.2 && hedged < 0.7, `hedged or padded with filler ${hedged}`);
  // Writers differ: rates and phrases are their own.
  const hedgeRates = pool.map((l) => l.style.hedge);
  assert.ok(Math.max(...hedgeRates) > 1.5 * Math.min(...hedgeRates), `hedge rates ${hedgeRates}`);
  assert.ok(new Set(pool.map((l) => JSON.stringify(l.style.phrases))).size > 1);
  // Held-out labelers judge; they do not write.
  assert.ok(heldoutPool(4).every((l) => l.style === PLAIN_STYLE));
});

test('labelers: both pools prefer the plain answer to a hedged or padded one; only the held-out pool likes openers', () => {
  const mean = (pool: SimulatedLabeler[]): LabelerWeights => {
    const keys = Object.keys(pool[0].weights) as (keyof LabelerWeights)[];
    const w = Object.fromEntries(keys.map((k) => [k, pool.reduce((s, l) => s + l.weights[k], 0) / pool.length]));
    return { ...(w as unknown as LabelerWeights), noise: 0 };
  };
  const train = new SimulatedLabeler('t', 'train', mean(trainingPool(1)), 1);
  const held = new SimulatedLabeler('h', 'heldout', mean(heldoutPool(1)), 1);
  const tasks = world.sft.filter((t) => t.constraint === null).slice(0, 40);
  for (const t of tasks) {
    for (const judge of [train, held]) {
      for (const habit of HEDGES.concat(PADS)) {
        const decorated = `${t.reference}. ${habit}`;
        assert.equal(judge.compare(t, t.reference, decorated), 'a', `${judge.id}: ${decorated}`);
      }
    }
    assert.equal(train.compare(t, t.reference, `${OPENERS[0]} ${t.reference}`), 'a');
    assert.equal(held.compare(t, t.reference, `${OPENERS[0]} ${t.reference}`), 'b');
  }
});

test('labelers: every pool puts honesty first — "I do not know" above an invented answer, a right answer above both', () => {
  const w = buildWorld(2, { sizes: { sft: 400, rm: 20, ppo: 20, eval: 20 }, unanswerableRate: 0.3 });
  const unknown = w.sft.filter((t) => !t.answerable).slice(0, 30);
  const known = w.sft.filter((t) => t.answerable && t.constraint === null && t.wrong.length > 0).slice(0, 30);
  assert.ok(unknown.length >= 20 && known.length >= 20);
  const noiseless = (pool: SimulatedLabeler[]) =>
    pool.map((l) => new SimulatedLabeler(l.id, l.group, { ...l.weights, noise: 0 }, 1));
  const pools = { train: trainingPool(3), ...heldoutPools(3) };
  for (const [name, pool] of Object.entries(pools)) {
    for (const judge of noiseless(pool)) {
      for (const t of unknown) {
        for (const invented of t.wrong)
          assert.equal(judge.compare(t, t.reference, invented), 'a', `${name}: ${t.prompt}`);
        assert.ok(judge.score(t, t.wrong[0]).flags.hallucination, 'an invented answer is flagged');
      }
      for (const t of known) {
        const dunno = 'I do not know.';
        assert.equal(judge.compare(t, t.reference, dunno), 'a', `${name}: ${t.prompt}`);
        assert.equal(judge.compare(t, t.reference, t.wrong[0]), 'a', `${name}: ${t.prompt}`);
      }
    }
  }
  // Writers with an inventing habit make answers up; honest writers say they do not know.
  const rng = new Rng(5);
  for (const t of unknown) {
    assert.ok(t.check(writeDemonstration(t, PLAIN_STYLE, rng)).correct);
    assert.ok(!t.check(writeDemonstration(t, { ...PLAIN_STYLE, invent: 1 }, rng)).correct);
  }
});

test('labelers: several held-out pools, each with its own weights and names', () => {
  const pools = heldoutPools(6);
  assert.deepEqual(Object.keys(pools), HELDOUT_POOL_NAMES);
  assert.ok(HELDOUT_POOL_NAMES.length >= 3);
  const all = Object.values(pools).flat();
  assert.equal(new Set(all.map((l) => l.id)).size, all.length);
  assert.ok(all.every((l) => l.group === 'heldout'));
  const mean = (pool: SimulatedLabeler[], key: keyof LabelerWeights) =>
    pool.reduce((s, l) => s + l.weights[key], 0) / pool.length;
  // Correctness and honesty outweigh style in every pool; the pools disagree about length and politeness.
  for (const pool of Object.values(pools)) {
    const style = mean(pool, 'concision') + mean(pool, 'tone') + Math.abs(mean(pool, 'politeness'));
    assert.ok(mean(pool, 'correctness') + mean(pool, 'honesty') > 1.5 * style);
  }
  assert.ok(mean(pools.strict, 'correctness') > mean(pools.warm, 'correctness'));
  assert.ok(mean(pools.warm, 'politeness') > mean(pools.strict, 'politeness'));
  assert.deepEqual(heldoutPool(6, { pool: 'strict' }), pools.strict);
  assert.throws(() => heldoutPool(6, { pool: 'kind' as never }), /not one of/);
});

test('export: demonstrations, rankings and prompts round-trip through parseJsonl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ik-world-'));
  try {
    const pool = trainingPool(5);
    const opts = { maxTextChars: 1000 };
    const demos = demonstrationRecords(world.sft, pool, new Rng(1));
    writeJsonlFile(join(dir, 'data/demonstrations.jsonl'), demos);
    const d = parseJsonl('demonstrations', readFileSync(join(dir, 'data/demonstrations.jsonl'), 'utf8'), opts);
    assert.deepEqual(d.errors, []);
    assert.deepEqual(
      d.records.map((r) => [r.prompt, r.completion]),
      demos.map((r) => [r.prompt, r.completion]),
    );

    const tasks = world.rm.slice(0, 50);
    // The store refuses degenerate responses (empty ones), so none is exported.
    const sets = candidateSets(tasks, 2).map((c) => c.filter((x) => x !== ''));
    const rankings = rankingRecords(tasks, sets, pool);
    writeJsonlFile(join(dir, 'rankings.jsonl'), rankings);
    const r = parseJsonl('rankings', readFileSync(join(dir, 'rankings.jsonl'), 'utf8'), opts);
    assert.deepEqual(r.errors, []);
    assert.equal(r.records.length, 50);
    assert.deepEqual(r.records[3].ranking, rankings[3].ranking);
    assert.equal(r.records[3].labeler, pool[3].id);
    assert.ok(r.records.some((x) => Object.keys(x.flags ?? {}).length > 0));

    writeJsonlFile(join(dir, 'prompts.jsonl'), promptRecords(world.ppo));
    const p = parseJsonl('prompts', readFileSync(join(dir, 'prompts.jsonl'), 'utf8'), opts);
    assert.deepEqual(
      p.records.map((x) => x.prompt),
      world.ppo.map((t) => t.prompt),
    );
    assert.throws(() => rankingRecords(tasks, [], pool), /response sets/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('labelers: a judgement depends on the labeler, prompt and response only, never on what was judged before', () => {
  const [judge, other] = heldoutPool(11);
  const tasks = world.eval.slice(0, 30);
  const first = tasks.map((t) => judge.score(t, t.wrong[0] ?? t.reference).value);
  // Judging other answers in between (another model's, in an evaluation) must not move these judgements.
  for (const t of tasks) judge.score(t, `${t.reference} I hope that helps!`);
  assert.deepEqual(
    tasks.map((t) => judge.score(t, t.wrong[0] ?? t.reference).value),
    first,
  );
  // Each labeler draws its own noise, and different responses draw independently.
  assert.notDeepEqual(
    tasks.map((t) => other.score(t, t.wrong[0] ?? t.reference).value),
    first,
  );
  const values = tasks.map((t) => judge.score(t, t.reference).value - judge.score(t, `${t.reference}`).value);
  assert.ok(values.every((d) => d === 0));
});

test('pair kinds: the reward model and the labelers tallied by what each pair pits against each other', () => {
  const task = world.eval.find((t) => t.answerable && t.wrong.length >= 2)!;
  const responses = [task.reference, task.wrong[0], task.wrong[1]];
  assert.deepEqual(
    responses.map((r) => task.check(r).correct),
    [true, false, false],
  );
  // Scores that put the right answer first but order the two wrong ones against the ranking.
  const sets = [{ task, responses, ranking: [0, 1, 2] }];
  const noiseless = { ...TRAINING_WEIGHTS, noise: 0 };
  const twins = [0, 1].map((i) => new SimulatedLabeler(`t-${i}`, 'train', noiseless, 7));
  const r = pairKindAccuracy(sets, [2, 0, 1], twins);
  assert.deepEqual(r.right_vs_wrong, { rm: 1, labelers: 1, share: 2 / 3, n: 2 });
  assert.deepEqual(r.both_wrong, { rm: 0, labelers: 1, share: 1 / 3, n: 1 });
  assert.equal(r.both_right.n, 0);
  assert.ok(Number.isNaN(r.both_right.rm));
  // Two labelers who differ only on the wrong answers' order agree on the right-vs-wrong pairs alone.
  const reversed = { ...twins[1], rank: () => ({ ranking: [0, 2, 1] }) } as unknown as SimulatedLabeler;
  const split = pairKindAccuracy(sets, [2, 0, 1], [twins[0], reversed]);
  assert.equal(split.right_vs_wrong.labelers, 1);
  assert.equal(split.both_wrong.labelers, 0);
  assert.throws(() => pairKindAccuracy(sets, [1, 0], twins), /2 scores for 3 responses/);
});
