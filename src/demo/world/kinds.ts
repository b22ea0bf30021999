// The task kinds: for each sub-kind of a family (arithmetic, units, lists, strings, facts), its phrasings, the
// constraints it allows, and how to draw one question with its answer, good contents and wrong ones.
import type { Rng } from '../../tensor/random.js';
import { FOODS, RIVERS, SIZES, TOWNS, townsOn, WORDS } from './facts.js';
import { between, pick, shuffled } from './random.js';

export type Family = 'arithmetic' | 'units' | 'lists' | 'strings' | 'facts';
export const FAMILIES: readonly Family[] = ['arithmetic', 'units', 'lists', 'strings', 'facts'];

export type Constraint = 'one_word' | 'digits' | 'lowercase' | 'uppercase' | 'bullets';

/** A phrasing template: `{name}` slots are filled from the task's arguments. */
export interface Phrasing {
  id: string;
  template: string;
  heldout: boolean;
}

export function phrasings(prefix: string, train: string[], heldout: string[]): Phrasing[] {
  return [
    ...train.map((template, i) => ({ id: `${prefix}.${i}`, template, heldout: false })),
    ...heldout.map((template, i) => ({ id: `${prefix}.${train.length + i}`, template, heldout: true })),
  ];
}

/** What a correct response must contain; the checker reads it. */
export type Answer =
  /** The last number is `value`; other numbers may only repeat the prompt's (`context`); no wrong unit words. */
  | { type: 'number'; value: number; context: number[]; badWords: string[] }
  /** Exactly these numbers in this order. */
  | { type: 'numbers'; values: number[] }
  /**
   * The word or phrase appears (as whole words) and none of the rivals does; for a fact about a town (`subject`), no
   * other town is named ("Cray is a city." does not say what Kell is).
   */
  | { type: 'phrase'; value: string; caseSensitive: boolean; rivals: string[]; subject?: string }
  /** Exactly `count` distinct town names, all on `river`. */
  | { type: 'towns'; river: string; count: number }
  /** Nothing to know: an abstention that names none of the would-be answers (`invented`). */
  | { type: 'unknown'; invented: string[] };

/** An answer's content: list items (one for most kinds) and, where the natural answer has more words, its one-word form. */
export interface Content {
  items: string[];
  short?: string;
}

export interface Instance {
  key: string;
  vars: Record<string, string | number>;
  answer: Answer;
  good: Content;
  /** Light variations of the unconstrained answer. */
  variants: string[];
  bad: Content[];
}

export interface Kind {
  family: Family;
  name: string;
  phrasings: Phrasing[];
  constraints: Constraint[];
  make(rng: Rng): Instance;
  /** The same question about a town that does not exist (kinds that ask about one town). */
  aboutUnknown?(name: string, rng: Rng): Instance;
}

const OPS = {
  plus: { word: 'plus', sym: '+', apply: (a: number, b: number) => a + b },
  minus: { word: 'minus', sym: '-', apply: (a: number, b: number) => a - b },
  times: { word: 'times', sym: '*', apply: (a: number, b: number) => a * b },
} as const;
type Op = keyof typeof OPS;

export const UNIT_CONVERSIONS = [
  { big: 'hour', small: 'minute', factor: 60 },
  { big: 'minute', small: 'second', factor: 60 },
  { big: 'day', small: 'hour', factor: 24 },
  { big: 'week', small: 'day', factor: 7 },
  { big: 'kilogram', small: 'gram', factor: 1000 },
  { big: 'meter', small: 'centimeter', factor: 100 },
  { big: 'kilometer', small: 'meter', factor: 1000 },
] as const;
const UNIT_NAMES = [...new Set(UNIT_CONVERSIONS.flatMap((c) => [c.big, c.small]))];

export function unitName(unit: string, n: number): string {
  return n === 1 ? unit : `${unit}s`;
}

const numberVariants = (s: string) => [`${s}.`, `The answer is ${s}.`, `It is ${s}.`];

function distinctNumbers(values: number[], not: number): number[] {
  return [...new Set(values)].filter((v) => v !== not && v >= 0);
}

function arithmeticKind(op: Op): Kind {
  return {
    family: 'arithmetic',
    name: op,
    phrasings: phrasings(
      'arithmetic',
      [
        'What is {a} {word} {b}?',
        'Compute {a} {sym} {b}.',
        'Work out {a} {word} {b}.',
        'What does {a} {sym} {b} equal?',
      ],
      ['Tell me {a} {word} {b}.', '{a} {sym} {b} = ?'],
    ),
    constraints: ['one_word', 'digits'],
    make(rng) {
      let a: number;
      let b: number;
      if (op === 'times') {
        a = between(rng, 1, 9);
        b = between(rng, 1, 9);
      } else {
        a = between(rng, 0, 12);
        b = between(rng, 0, 12);
        if (op === 'minus' && b > a) [a, b] = [b, a];
      }
      const value = OPS[op].apply(a, b);
      const confusion = op === 'plus' ? a * b : a + b;
      return {
        key: `${a},${b}`,
        vars: { a, b, word: OPS[op].word, sym: OPS[op].sym },
        answer: { type: 'number', value, context: [a, b], badWords: [] },
        good: { items: [String(value)] },
        variants: numberVariants(String(value)),
        bad: distinctNumbers([value + 1, value - 1, confusion, value + 10], value)
          .slice(0, 3)
          .map((v) => ({ items: [String(v)] })),
      };
    },
  };
}

const unitsKind: Kind = {
  family: 'units',
  name: 'convert',
  phrasings: phrasings(
    'units',
    [
      'How many {to} are in {n} {from}?',
      'Convert {n} {from} to {to}.',
      '{n} {from} is how many {to}?',
      'Express {n} {from} in {to}.',
    ],
    ['Change {n} {from} into {to}.', 'What is {n} {from} in {to}?'],
  ),
  constraints: ['one_word', 'digits'],
  make(rng) {
    const c = pick(rng, UNIT_CONVERSIONS);
    const k = between(rng, 1, 9);
    // Mostly big → small (multiply); sometimes small → big with an exact result.
    const down = rng.next() < 0.7;
    const [n, from, value, to] = down ? [k, c.big, k * c.factor, c.small] : [k * c.factor, c.small, k, c.big];
    const toName = unitName(to, value);
    const badWords = UNIT_NAMES.filter((u) => u !== from && u !== to).flatMap((u) => [u, `${u}s`]);
    const wrongUnit = pick(
      rng,
      UNIT_NAMES.filter((u) => u !== from && u !== to),
    );
    const wrongValue = down ? k * (c.factor === 60 ? 100 : 60) : k * 10;
    const answer = `${value} ${toName}`;
    return {
      key: `${n}${from}>${to}`,
      vars: { n, from: unitName(from, n), to: `${to}s` },
      answer: { type: 'number', value, context: [n], badWords },
      good: { items: [answer], short: String(value) },
      variants: [`${answer}.`, `It is ${answer}.`, `${n} ${unitName(from, n)} is ${answer}.`],
      bad: [
        { items: [`${wrongValue} ${unitName(to, wrongValue)}`], short: String(wrongValue) },
        { items: [`${value + 1} ${unitName(to, value + 1)}`], short: String(value + 1) },
        { items: [`${value} ${unitName(wrongUnit, value)}`], short: String(n) },
      ],
    };
  },
};

function isSorted(xs: number[]): boolean {
  return xs.every((x, i) => i === 0 || xs[i - 1] <= x);
}

function randomList(rng: Rng, len: number): number[] {
  const pool = shuffled(
    rng,
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
  return pool.slice(0, len);
}

function sortKind(direction: 'up' | 'down'): Kind {
  const up = direction === 'up';
  return {
    family: 'lists',
    name: `sort_${direction}`,
    phrasings: up
      ? phrasings(
          'lists.sort_up',
          [
            'Sort {list} from small to large.',
            'Put {list} in increasing order.',
            'Order {list} from lowest to highest.',
            'Arrange {list} in ascending order.',
          ],
          ['List {list} smallest first.', 'Rank {list} from least to most.'],
        )
      : phrasings(
          'lists.sort_down',
          [
            'Sort {list} from large to small.',
            'Put {list} in decreasing order.',
            'Order {list} from highest to lowest.',
            'Arrange {list} in descending order.',
          ],
          ['List {list} largest first.', 'Rank {list} from most to least.'],
        ),
    constraints: ['bullets'],
    make(rng) {
      let list: number[];
      do list = randomList(rng, between(rng, 3, 5));
      while (isSorted(list) || isSorted(list.slice().reverse()));
      const sorted = list.slice().sort((a, b) => (up ? a - b : b - a));
      const s = sorted.map(String);
      return {
        key: list.join(','),
        vars: { list: list.join(', ') },
        answer: { type: 'numbers', values: sorted },
        good: { items: s },
        variants: [`${s.join(', ')}.`, `In order: ${s.join(', ')}.`],
        bad: [{ items: list.map(String) }, { items: s.slice().reverse() }, { items: s.slice(0, -1) }],
      };
    },
  };
}

const evensKind: Kind = {
  family: 'lists',
  name: 'evens',
  phrasings: phrasings(
    'lists.evens',
    [
      'Which of {list} are even?',
      'List the even numbers in {list}.',
      'Keep only the even numbers: {list}.',
      'Pick the even ones from {list}.',
    ],
    ['Filter {list} to even numbers.', 'Give the even numbers among {list}.'],
  ),
  constraints: ['bullets'],
  make(rng) {
    let list: number[];
    do list = randomList(rng, between(rng, 3, 5));
    while (list.every((x) => x % 2 === 0) || list.every((x) => x % 2 === 1));
    const evens = list.filter((x) => x % 2 === 0).map(String);
    const odds = list.filter((x) => x % 2 === 1).map(String);
    const s = evens.join(', ');
    return {
      key: list.join(','),
      vars: { list: list.join(', ') },
      answer: { type: 'numbers', values: evens.map(Number) },
      good: { items: evens },
      variants: [`${s}.`, `The even ones are ${s}.`],
      bad: [
        { items: odds },
        { items: list.map(String) },
        { items: evens.length > 1 ? evens.slice(1) : [...evens, odds[0]] },
      ],
    };
  },
};

function reversed(w: string): string {
  return [...w].reverse().join('');
}

const reverseKind: Kind = {
  family: 'strings',
  name: 'reverse',
  phrasings: phrasings(
    'strings.reverse',
    ['Reverse the word {w}.', 'Spell {w} backwards.', 'Write {w} in reverse.', 'What is {w} backwards?'],
    ['Flip the letters of {w}.', 'Turn {w} around, letter by letter.'],
  ),
  constraints: ['one_word', 'uppercase'],
  make(rng) {
    const w = pick(rng, WORDS);
    const r = reversed(w);
    const swapped = r[1] + r[0] + r.slice(2);
    return {
      key: w,
      vars: { w },
      answer: { type: 'phrase', value: r, caseSensitive: false, rivals: [] },
      good: { items: [r] },
      variants: [`${r}.`, `${w} backwards is ${r}.`, `It is ${r}.`],
      bad: [{ items: [w] }, ...(swapped !== r ? [{ items: [swapped] }] : []), { items: [r.slice(1)] }],
    };
  },
};

const upperKind: Kind = {
  family: 'strings',
  name: 'upper',
  phrasings: phrasings(
    'strings.upper',
    ['Write {w} in capital letters.', 'Uppercase the word {w}.', 'Put {w} in all caps.', 'Give {w} in upper case.'],
    ['Capitalise every letter of {w}.', 'Make {w} all capitals.'],
  ),
  constraints: ['one_word'],
  make(rng) {
    const w = pick(rng, WORDS);
    const u = w.toUpperCase();
    return {
      key: w,
      vars: { w },
      answer: { type: 'phrase', value: u, caseSensitive: true, rivals: [] },
      good: { items: [u] },
      variants: [`${u}.`, `It is ${u}.`],
      bad: [{ items: [w] }, { items: [w[0].toUpperCase() + w.slice(1)] }, { items: [reversed(u)] }],
    };
  },
};

const countKind: Kind = {
  family: 'strings',
  name: 'count',
  phrasings: phrasings(
    'strings.count',
    [
      'How many letters are in {w}?',
      'Count the letters in {w}.',
      'What is the length of the word {w}?',
      'How long is the word {w}?',
    ],
    ['Number of letters in {w}?', 'Tell me how many letters {w} has.'],
  ),
  constraints: ['one_word', 'digits'],
  make(rng) {
    const w = pick(rng, WORDS);
    const n = w.length;
    return {
      key: w,
      vars: { w },
      answer: { type: 'number', value: n, context: [], badWords: [] },
      good: { items: [String(n)] },
      variants: [`${n}.`, `${w} has ${n} letters.`, `It has ${n} letters.`],
      bad: [{ items: [String(n + 1)] }, { items: [String(n - 1)] }],
    };
  },
};

/**
 * A question about a town the world does not hold. What an honest writer says is that they do not know it; what a
 * model that always answers says is one of the kind's possible answers, invented.
 */
function unknownTown(name: string, answers: readonly string[], rng: Rng): Instance {
  return {
    key: name,
    vars: { t: name },
    answer: { type: 'unknown', invented: [...answers] },
    good: { items: [`I do not know of a town called ${name}.`] },
    variants: [`There is no town called ${name}.`, `I have not heard of ${name}.`, `I do not know ${name}.`],
    bad: shuffled(rng, answers)
      .slice(0, 2)
      .map((a) => ({ items: [a] })),
  };
}

const riverKind: Kind = {
  family: 'facts',
  name: 'river',
  phrasings: phrasings(
    'facts.river',
    ['Which river runs through {t}?', 'What river is {t} on?', 'Name the river of {t}.', '{t} lies on which river?'],
    ['On what river does {t} stand?', 'Tell me the river at {t}.'],
  ),
  constraints: ['one_word', 'lowercase', 'uppercase'],
  make(rng) {
    const town = pick(rng, TOWNS);
    const others = shuffled(
      rng,
      RIVERS.filter((r) => r !== town.river),
    );
    return {
      key: town.name,
      vars: { t: town.name },
      answer: { type: 'phrase', value: town.river, caseSensitive: false, rivals: [...others], subject: town.name },
      good: { items: [town.river] },
      variants: [`The ${town.river}.`, `${town.name} is on the ${town.river}.`, `The river ${town.river}.`],
      bad: others.slice(0, 2).map((r) => ({ items: [r] })),
    };
  },
  aboutUnknown: (name, rng) => unknownTown(name, RIVERS, rng),
};

const foodKind: Kind = {
  family: 'facts',
  name: 'food',
  phrasings: phrasings(
    'facts.food',
    [
      'What food is {t} known for?',
      'What is {t} famous for eating?',
      'Name the famous food of {t}.',
      'Which dish is {t} known for?',
    ],
    ['What do people in {t} love to eat?', 'Tell me the known food of {t}.'],
  ),
  constraints: ['uppercase'],
  make(rng) {
    const town = pick(rng, TOWNS);
    const others = shuffled(
      rng,
      FOODS.filter((f) => f !== town.food),
    );
    return {
      key: town.name,
      vars: { t: town.name },
      answer: { type: 'phrase', value: town.food, caseSensitive: false, rivals: [...others], subject: town.name },
      good: { items: [town.food] },
      variants: [`${town.food}.`, `${town.name} is known for ${town.food}.`, `It is ${town.food}.`],
      bad: others.slice(0, 2).map((f) => ({ items: [f] })),
    };
  },
  aboutUnknown: (name, rng) => unknownTown(name, FOODS, rng),
};

const sizeKind: Kind = {
  family: 'facts',
  name: 'size',
  phrasings: phrasings(
    'facts.size',
    [
      'Is {t} a village, a town or a city?',
      'How big is {t}: village, town or city?',
      'What size is {t}: village, town or city?',
      'Village, town or city: which is {t}?',
    ],
    ['Describe {t}: village, town or city?', 'Say if {t} is a village, town or city.'],
  ),
  constraints: ['one_word', 'uppercase'],
  make(rng) {
    const town = pick(rng, TOWNS);
    const others = SIZES.filter((s) => s !== town.size);
    return {
      key: town.name,
      vars: { t: town.name },
      answer: { type: 'phrase', value: town.size, caseSensitive: false, rivals: others, subject: town.name },
      good: { items: [town.size] },
      variants: [`A ${town.size}.`, `${town.name} is a ${town.size}.`, `It is a ${town.size}.`],
      bad: others.map((s) => ({ items: [s] })),
    };
  },
  aboutUnknown: (name, rng) => unknownTown(name, SIZES, rng),
};

const townsKind: Kind = {
  family: 'facts',
  name: 'towns',
  phrasings: phrasings(
    'facts.towns',
    [
      'Name three towns on the {r}.',
      'List three towns on the river {r}.',
      'Give three towns along the {r}.',
      'Which are three towns on the {r}?',
    ],
    ['Tell me three towns by the {r}.', 'Three towns on the river {r}, please.'],
  ),
  constraints: ['bullets'],
  make(rng) {
    const river = pick(rng, RIVERS);
    const on = townsOn(river).map((t) => t.name);
    const chosen = shuffled(rng, [0, 1, 2, 3, 4])
      .slice(0, 3)
      .sort((a, b) => a - b)
      .map((i) => on[i]);
    const offRiver = shuffled(
      rng,
      TOWNS.filter((t) => t.river !== river).map((t) => t.name),
    );
    const [a, b, c] = chosen;
    return {
      key: `${river}:${chosen.join(',')}`,
      vars: { r: river },
      answer: { type: 'towns', river, count: 3 },
      good: { items: chosen },
      variants: [`${a}, ${b} and ${c}.`, `${a}, ${b}, ${c}.`],
      bad: [{ items: offRiver.slice(0, 3) }, { items: [a, b, offRiver[3]] }, { items: [a, b] }],
    };
  },
};

export const KINDS: readonly Kind[] = [
  arithmeticKind('plus'),
  arithmeticKind('minus'),
  arithmeticKind('times'),
  unitsKind,
  sortKind('up'),
  sortKind('down'),
  evensKind,
  reverseKind,
  upperKind,
  countKind,
  riverKind,
  foodKind,
  sizeKind,
  townsKind,
];

/** Every base phrasing of every family (for tests and reports). */
export function allPhrasings(): Phrasing[] {
  const seen = new Map<string, Phrasing>();
  for (const k of KINDS) for (const p of k.phrasings) seen.set(p.id, p);
  return [...seen.values()];
}
