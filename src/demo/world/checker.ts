// Reading a response: whether it gives the right answer, answers at all, says it does not know, and obeys a
// format constraint.

import { TOWNS, type Town } from './facts.js';
import type { Answer, Constraint } from './kinds.js';

/** Words of a text (letters only), joined by single spaces and padded, for whole-word matching. */
function wordLine(text: string): string {
  return ` ${(text.match(/[A-Za-z]+/g) ?? []).join(' ')} `;
}

function hasPhrase(text: string, phrase: string, caseSensitive: boolean): boolean {
  const line = wordLine(caseSensitive ? text : text.toLowerCase());
  return line.includes(wordLine(caseSensitive ? phrase : phrase.toLowerCase()));
}

function numbersIn(text: string): number[] {
  return (text.match(/\d+/g) ?? []).map(Number);
}

const TOWN_BY_LOWER = new Map(TOWNS.map((t) => [t.name.toLowerCase(), t]));

function townsNamed(text: string): Town[] {
  return (text.match(/[A-Za-z]+/g) ?? []).flatMap((w) => TOWN_BY_LOWER.get(w.toLowerCase()) ?? []);
}

const ABSTAIN =
  /\b(i do not know|i don't know|i have not heard|i haven't heard|i never heard|there is no (town|place|village|city)|no (town|place) (called|named)|(does|do) not exist|doesn't exist|not a real)\b/i;

/** Whether a response says it does not know (rather than answering). */
export function abstains(response: string): boolean {
  return ABSTAIN.test(response);
}

// "a town called X" names no size: the words of an abstention are not an invented answer.
const CALLED = /\b(no|a|an|any)? ?(town|place|village|city) (called|named)\b/gi;

function invents(answer: { invented: string[] }, response: string): string | undefined {
  const said = response.replace(CALLED, ' ');
  return answer.invented.find((a) => hasPhrase(said, a, false));
}

export function checkAnswer(answer: Answer, response: string): { correct: boolean; details: string } {
  if (answer.type === 'unknown') {
    const invented = invents(answer, response);
    if (invented) return { correct: false, details: `no such town, invents "${invented}"` };
    if (!abstains(response)) return { correct: false, details: 'no such town, does not say so' };
    return { correct: true, details: 'no such town, says so' };
  }
  // An answer wrapped in "I do not know" is not given.
  if (abstains(response)) return { correct: false, details: 'abstains on a question with an answer' };
  switch (answer.type) {
    case 'number': {
      const nums = numbersIn(response);
      const last = nums.at(-1);
      const expected = `expected ${answer.value}`;
      if (last === undefined) return { correct: false, details: `${expected}, found no number` };
      if (last !== answer.value) return { correct: false, details: `${expected}, found ${last}` };
      const stray = nums.find((x) => x !== answer.value && !answer.context.includes(x));
      if (stray !== undefined) return { correct: false, details: `${expected}, also found ${stray}` };
      const line = wordLine(response.toLowerCase());
      const bad = answer.badWords.find((w) => line.includes(` ${w} `));
      if (bad) return { correct: false, details: `${expected}, wrong unit "${bad}"` };
      return { correct: true, details: expected };
    }
    case 'numbers': {
      const nums = numbersIn(response);
      const expected = `expected ${answer.values.join(', ')}`;
      const same = nums.length === answer.values.length && nums.every((x, i) => x === answer.values[i]);
      return { correct: same, details: same ? expected : `${expected}, found ${nums.join(', ') || 'none'}` };
    }
    case 'phrase': {
      const expected = `expected "${answer.value}"`;
      if (!hasPhrase(response, answer.value, answer.caseSensitive))
        return { correct: false, details: `${expected} missing` };
      const rival = answer.rivals.find((r) => hasPhrase(response, r, false));
      if (rival) return { correct: false, details: `${expected}, also says "${rival}"` };
      const other = answer.subject && townsNamed(response).find((t) => t.name !== answer.subject);
      if (other) return { correct: false, details: `${expected}, speaks of ${other.name}` };
      return { correct: true, details: expected };
    }
    case 'towns': {
      const named = new Set(townsNamed(response));
      const expected = `expected ${answer.count} towns on the ${answer.river}`;
      const off = [...named].find((t) => t.river !== answer.river);
      if (off) return { correct: false, details: `${expected}, ${off.name} is on the ${off.river}` };
      if (named.size !== answer.count) return { correct: false, details: `${expected}, found ${named.size}` };
      return { correct: true, details: expected };
    }
  }
}

/** Whether the response gives an answer of the kind asked for, right or wrong. */
export function attemptsAnswer(answer: Answer, response: string): boolean {
  switch (answer.type) {
    case 'number':
    case 'numbers':
      return numbersIn(response).length > 0;
    case 'phrase': {
      // Facts name one of their rivals; a word task spells a word from the given word's letters.
      if (answer.rivals.length > 0) return [answer.value, ...answer.rivals].some((p) => hasPhrase(response, p, false));
      const letters = new Set(answer.value.toLowerCase());
      return (response.toLowerCase().match(/[a-z]+/g) ?? []).some(
        (w) => w.length >= answer.value.length - 2 && [...w].every((c) => letters.has(c)),
      );
    }
    case 'towns':
      return (response.match(/[A-Za-z]+/g) ?? []).some((w) => TOWN_BY_LOWER.has(w.toLowerCase()));
    case 'unknown':
      return abstains(response) || invents(answer, response) !== undefined;
  }
}

/** Whether the response obeys the constraint; null when it does, else why not. */
export function constraintViolation(constraint: Constraint | null, response: string): string | null {
  const r = response.trim();
  if (r === '') return 'empty response';
  switch (constraint) {
    case null:
      return null;
    case 'one_word':
      return /^\S+$/.test(r.replace(/[.!]$/, '')) ? null : 'not one word';
    case 'digits':
      return /^\d+$/.test(r) ? null : 'not digits only';
    case 'lowercase':
      return r === r.toLowerCase() && /[a-z]/.test(r) ? null : 'not lowercase';
    case 'uppercase':
      return r === r.toUpperCase() && /[A-Z]/.test(r) ? null : 'not capitals';
    case 'bullets': {
      const lines = r.split('\n').filter((l) => l.trim() !== '');
      return lines.length === 3 && lines.every((l) => /^\s*[-*•] \S/.test(l)) ? null : 'not three bullet points';
    }
  }
}
