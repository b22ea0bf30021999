/**
 * The pretraining corpus: plain prose about the same world (towns, rivers, foods, sums, units, lists, words), with
 * a few quiz pages ("Q: … A: …") as real web text has: the base model learns the facts and the quiz layout that
 * few-shot prompting leans on, but never the instructions or the chat format that SFT teaches.
 * Documents are a few sentences on one topic; `corpusText` joins them with blank lines, the format that
 * `instructkit pretrain --corpus` reads.
 */
import type { Rng } from '../../tensor/random.js';
import { TOWNS, type Town, townsOn, WORDS } from './facts.js';
import { UNIT_CONVERSIONS, unitName } from './kinds.js';
import { between, pick, shuffled, weighted } from './random.js';

export interface CorpusOptions {
  /** Total number of sentences. */
  sentences: number;
}

function listText(items: readonly (string | number)[]): string {
  const s = items.map(String);
  return s.length === 1 ? s[0] : `${s.slice(0, -1).join(', ')} and ${s.at(-1)}`;
}

function riverSentence(rng: Rng, t: Town): string {
  return pick(rng, [
    `${t.name} lies on the river ${t.river}.`,
    `${t.name} is on the ${t.river}.`,
    `The ${t.river} runs through ${t.name}.`,
  ]);
}

function foodSentence(rng: Rng, t: Town): string {
  return pick(rng, [
    `The people of ${t.name} are known for ${t.food}.`,
    `${t.name} is famous for ${t.food}.`,
    `In ${t.name} they love to eat ${t.food}.`,
  ]);
}

function sizeSentence(rng: Rng, t: Town): string {
  return pick(rng, [`${t.name} is a ${t.size}.`, `${t.name} is a ${t.size} on the ${t.river}.`]);
}

function townsSentence(rng: Rng, river: string): string {
  const names = townsOn(river).map((t) => t.name);
  if (rng.next() < 0.5) return `The towns on the ${river} are ${listText(names)}.`;
  const some = shuffled(rng, names).slice(0, 3);
  return `${listText(some)} lie on the ${river}.`;
}

function arithmeticSentence(rng: Rng): string {
  const op = rng.int(3);
  if (op === 2) {
    const a = between(rng, 1, 9);
    const b = between(rng, 1, 9);
    return pick(rng, [`${a} times ${b} is ${a * b}.`, `${a} * ${b} = ${a * b}.`, `${a} times ${b} makes ${a * b}.`]);
  }
  let a = between(rng, 0, 12);
  let b = between(rng, 0, 12);
  if (op === 1) {
    if (b > a) [a, b] = [b, a];
    return pick(rng, [`${a} minus ${b} is ${a - b}.`, `${a} - ${b} = ${a - b}.`, `${a} minus ${b} leaves ${a - b}.`]);
  }
  return pick(rng, [`${a} plus ${b} is ${a + b}.`, `${a} + ${b} = ${a + b}.`, `${a} plus ${b} makes ${a + b}.`]);
}

function unitSentence(rng: Rng): string {
  const c = pick(rng, UNIT_CONVERSIONS);
  const k = between(rng, 1, 9);
  const v = k * c.factor;
  return pick(rng, [
    `Each ${c.big} has ${c.factor} ${c.small}s.`,
    `There are ${c.factor} ${c.small}s in a ${c.big}.`,
    `${k} ${unitName(c.big, k)} is ${v} ${unitName(c.small, v)}.`,
    `${v} ${unitName(c.small, v)} make ${k} ${unitName(c.big, k)}.`,
  ]);
}

function listSentence(rng: Rng): string {
  const list = shuffled(
    rng,
    Array.from({ length: 20 }, (_, i) => i + 1),
  ).slice(0, between(rng, 3, 5));
  const up = list.slice().sort((a, b) => a - b);
  const evens = list.filter((x) => x % 2 === 0);
  const x = pick(rng, list);
  const options = [
    `From small to large, ${list.join(', ')} go ${up.join(', ')}.`,
    `From large to small, ${list.join(', ')} go ${up.slice().reverse().join(', ')}.`,
    `${x} is ${x % 2 === 0 ? 'even' : 'odd'}.`,
  ];
  if (evens.length > 0) options.push(`The even numbers among ${list.join(', ')} are ${listText(evens)}.`);
  return pick(rng, options);
}

// One question and answer of a quiz page, in wordings of its own (not the tasks' phrasings).
function quizPair(rng: Rng): string {
  const t = pick(rng, TOWNS);
  const a = between(rng, 1, 12);
  const b = between(rng, 1, 12);
  const w = pick(rng, WORDS);
  return pick(rng, [
    `Q: ${t.name} sits on the bank of which river?\nA: The ${t.river}.`,
    `Q: What dish do people in ${t.name} love?\nA: ${t.food[0].toUpperCase()}${t.food.slice(1)}.`,
    `Q: ${a} plus ${b} comes to how much?\nA: ${a + b}.`,
    `Q: The word ${w} has how many letters?\nA: ${w.length}.`,
  ]);
}

function wordSentence(rng: Rng): string {
  const w = pick(rng, WORDS);
  return pick(rng, [
    `The word ${w} backwards is ${[...w].reverse().join('')}.`,
    `The word ${w} has ${w.length} letters.`,
    `In capitals, the word ${w} is ${w.toUpperCase()}.`,
    `Spelled in reverse, ${w} gives ${[...w].reverse().join('')}.`,
  ]);
}

/**
 * Documents of prose sentences, `opts.sentences` in all, deterministic from the rng. Towns come from a shuffled
 * deck, so every town's river and food appear once the corpus holds a few hundred sentences.
 */
export function pretrainCorpus(rng: Rng, opts: CorpusOptions): string[] {
  if (!Number.isInteger(opts.sentences) || opts.sentences < 1) {
    throw new Error(`pretrainCorpus: sentences must be a positive integer, got ${opts.sentences}`);
  }
  const docs: string[] = [];
  let deck: Town[] = [];
  let left = opts.sentences;
  while (left > 0) {
    const topic = weighted(rng, [4, 1, 2, 1, 1, 1.5, 1]);
    let sentences: string[];
    if (topic === 0) {
      if (deck.length === 0) deck = shuffled(rng, TOWNS);
      const t = deck.pop()!;
      const parts = shuffled(rng, [riverSentence(rng, t), foodSentence(rng, t)]);
      if (rng.next() < 0.6) parts.push(sizeSentence(rng, t));
      sentences = parts;
    } else if (topic === 1) {
      const t = pick(rng, TOWNS);
      const city = townsOn(t.river).find((x) => x.size === 'city');
      sentences = [townsSentence(rng, t.river)];
      if (city) sentences.push(`The city on the ${t.river} is ${city.name}.`);
    } else {
      const make = [arithmeticSentence, unitSentence, listSentence, wordSentence, quizPair][topic - 2];
      sentences = Array.from({ length: between(rng, 2, 4) }, () => make(rng));
    }
    sentences = sentences.slice(0, left);
    left -= sentences.length;
    docs.push(sentences.join(topic === 6 ? '\n' : ' '));
  }
  return docs;
}

/** The corpus as one text: documents separated by blank lines. */
export function corpusText(docs: readonly string[]): string {
  return `${docs.join('\n\n')}\n`;
}
