/**
 * How a simulated labeler writes a demonstration. People who write demonstrations are not the ideal answer
 * written out: each has habits — opening with "Sure!", saying the answer as a full sentence, hedging ("I think"),
 * padding with a sentence that adds nothing — and now and then a slip: a wrong answer, or an instruction's format
 * overlooked. The same people, ranking answers side by side, prefer the plain correct one: ranking is easier than
 * writing. That gap is what the paper's RLHF step exploits, and what the miniature needs to show it: SFT imitates
 * the writers' mixture of habits, the reward model learns the rankers' taste, and PPO moves toward it.
 */
import type { Rng } from '../../tensor/random.js';
import { breakFormat } from '../world/candidates.js';
import { pick } from '../world/random.js';
import type { Task } from '../world/tasks.js';

/** Rates, each in [0, 1], of a writer's habits, and the phrases that are theirs. */
export interface WritingStyle {
  /** Opens with a polite phrase ("Sure!"). */
  opener: number;
  /** Says the answer as a full sentence (one of the task's variants) instead of the bare answer. */
  restate: number;
  /** Adds a hedge after the answer ("I think so."). */
  hedge: number;
  /** Adds a sentence that says nothing more ("I hope that helps!"). */
  pad: number;
  /** Writes a wrong answer. */
  slip: number;
  /** Overlooks the instruction's format constraint (one word, digits, case, bullets). */
  ignoreConstraint: number;
  /**
   * Asked about something that does not exist, writes a plausible answer anyway instead of saying they do not know
   * (people asked to demonstrate an answer tend to give one).
   */
  invent: number;
  /** This writer's own opener, hedge and padding sentence. */
  phrases: { opener: string; hedge: string; pad: string };
}

// Openers match the labelers' polite-opener feature, hedges their filler feature; pads hold no numbers or names
// (so they never change an answer's correctness) and only one of them reads as filler. Hedges and pads are sentences
// after the answer, so they never stand between the question and the answer.
export const OPENERS = ['Sure!', 'Of course.', 'Certainly.', 'Happy to help:'];
export const HEDGES = ['I think so.', 'I guess so.', 'Maybe.', 'That is my guess.'];
export const PADS = ['I hope that helps!', 'That is the answer.', 'Let me know if you need more.', 'Easy one.'];

/** A writer who always writes the reference answer. */
export const PLAIN_STYLE: WritingStyle = {
  opener: 0,
  restate: 0,
  hedge: 0,
  pad: 0,
  slip: 0,
  ignoreConstraint: 0,
  invent: 0,
  phrases: { opener: OPENERS[0], hedge: HEDGES[0], pad: PADS[0] },
};

/** `text`, then `sentence` after it (a full stop added between when `text` has none). */
export const sentenceAfter = (text: string, sentence: string) => `${text}${/[.!?]$/.test(text) ? '' : '.'} ${sentence}`;

/**
 * One demonstration in the writer's style. A task with a format constraint leaves no room for habits: the writer
 * follows it, or overlooks it at its rate (writing the answer as it would without the constraint).
 */
export function writeDemonstration(task: Task, style: WritingStyle, rng: Rng): string {
  const slip = rng.next() < (task.answerable ? style.slip : style.invent) && task.wrong.length > 0;
  if (task.constraint !== null) {
    if (rng.next() < style.ignoreConstraint) return breakFormat(task, rng) ?? task.reference;
    return slip ? pick(rng, task.wrong) : task.reference;
  }
  let text = slip ? pick(rng, task.wrong) : task.reference;
  if (!slip && task.variants.length > 0 && rng.next() < style.restate) text = pick(rng, task.variants);
  if (rng.next() < style.opener) text = `${style.phrases.opener} ${text}`;
  if (rng.next() < style.hedge) text = sentenceAfter(text, style.phrases.hedge);
  if (rng.next() < style.pad) text = sentenceAfter(text, style.phrases.pad);
  return text;
}

const HABIT_PHRASES = [...OPENERS, ...HEDGES, ...PADS].map((p) => p.toLowerCase());

/** Whether a response carries one of the writers' habits (an opener, hedge or padding sentence). */
export function showsHabit(response: string): boolean {
  const r = response.toLowerCase();
  return HABIT_PHRASES.some((p) => r.includes(p));
}
