/**
 * Synthetic candidate responses to a task, the kinds a half-trained model produces: right, lightly varied, wrong,
 * rambling, overly polite, format-breaking, repetitive, empty, off-topic. Used to measure labeler agreement and in
 * tests; the demo ranks real model samples instead.
 */
import type { Rng } from '../../tensor/random.js';
import { FAMILIES } from './kinds.js';
import { pick, weighted } from './random.js';
import { generateTask, type Task } from './tasks.js';

export type CandidateStyle =
  | 'reference'
  | 'variant'
  | 'wrong'
  | 'verbose'
  | 'polite'
  | 'format'
  | 'repeat'
  | 'empty'
  | 'offtopic';

export interface Candidate {
  text: string;
  style: CandidateStyle;
}

const OPENERS = ['Well, let me think.', 'Hmm, good question.', 'Okay, so basically,', 'Let me see.'];
const TAILS = ['I think.', 'I hope that helps!', 'Maybe.', 'That is my guess.'];
const POLITE = ['Sure!', 'Of course.', 'Happy to help:', 'Certainly.'];

/** The reference's content with its format constraint broken (null when the task has no constraint). */
export function breakFormat(task: Task, rng: Rng): string | null {
  const ref = task.reference;
  switch (task.constraint) {
    case null:
      return null;
    case 'one_word':
    case 'digits':
      return pick(rng, [`The answer is ${ref}.`, `It is ${ref}.`]);
    case 'lowercase':
      return ref[0].toUpperCase() + ref.slice(1);
    case 'uppercase':
      return ref.toLowerCase();
    case 'bullets':
      return ref
        .split('\n')
        .map((l) => l.replace(/^- /, ''))
        .join(', ');
  }
}

/** One candidate of the given style. */
export function candidateResponse(task: Task, style: CandidateStyle, rng: Rng): string {
  const core = () => (task.variants.length > 0 ? pick(rng, task.variants) : task.reference);
  switch (style) {
    case 'reference':
      return task.reference;
    case 'variant':
      return core();
    case 'wrong':
      return pick(rng, task.wrong);
    case 'verbose':
      return `${pick(rng, OPENERS)} ${core()} ${pick(rng, TAILS)}`;
    case 'polite':
      return `${pick(rng, POLITE)} ${core()}`;
    case 'format':
      return breakFormat(task, rng) ?? `${task.reference}, ${task.reference}`;
    case 'repeat':
      return [task.reference, task.reference, task.reference].join(' ');
    case 'empty':
      return '';
    case 'offtopic': {
      const other = generateTask(rng, {
        phrasing: 'train',
        family: pick(
          rng,
          FAMILIES.filter((f) => f !== task.family),
        ),
      });
      return task.check(other.reference).correct ? 'I do not know.' : other.reference;
    }
  }
}

const STYLES: readonly CandidateStyle[] = [
  'reference',
  'variant',
  'wrong',
  'verbose',
  'polite',
  'format',
  'repeat',
  'empty',
  'offtopic',
];
const STYLE_WEIGHTS = [2, 1.5, 2, 1.5, 1, 1.5, 0.7, 0.4, 0.7];

/** k distinct candidates with a realistic mix of styles. */
export function candidateResponses(task: Task, rng: Rng, k: number): Candidate[] {
  const out: Candidate[] = [];
  const seen = new Set<string>();
  for (let tries = 0; out.length < k; tries++) {
    if (tries > 200) throw new Error(`candidateResponses: could not find ${k} distinct responses for "${task.prompt}"`);
    const style = STYLES[weighted(rng, STYLE_WEIGHTS)];
    const text = candidateResponse(task, style, rng);
    if (seen.has(text)) continue;
    seen.add(text);
    out.push({ text, style });
  }
  return out;
}
