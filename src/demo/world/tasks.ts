/**
 * Instruction tasks whose answers a program can check. A task = one question from a family (arithmetic, units,
 * lists, strings, facts) in one of several phrasings, optionally with a format constraint ("Answer in one word.").
 * Some phrasings are reserved for held-out evaluation. Some questions ask about a town that does not exist: the
 * right answer says so (an abstention), and any river, food or size named for it is invented. Texts stay short (prompt ≤ 64 chars, answer ≤ 40) because
 * the models that learn them are tiny.
 */
import type { Rng } from '../../tensor/random.js';
import { attemptsAnswer, checkAnswer, constraintViolation } from './checker.js';
import { UNKNOWN_TOWNS_HELDOUT, UNKNOWN_TOWNS_TRAIN } from './facts.js';
import { type Constraint, type Content, FAMILIES, type Family, KINDS, type Phrasing, phrasings } from './kinds.js';
import { pick } from './random.js';

export const MAX_PROMPT_CHARS = 64;
export const MAX_ANSWER_CHARS = 40;

export interface CheckResult {
  /** The content is right (whatever the format). */
  correct: boolean;
  /** The format constraint holds (for a task without one: the response is not empty). */
  constraintsMet: boolean;
  /**
   * The response answers the question asked, rightly or wrongly: a number where a number is asked for, a river's
   * name for "which river", a spelling of the given word. Prose that answers nothing ("is famous for.") does not.
   */
  attempted: boolean;
  /** Why, in a few words: what was expected and what failed. */
  details: string;
}

export interface Task {
  /** Unique per prompt: kind, arguments and phrasing. */
  id: string;
  family: Family;
  /** Sub-kind within the family, e.g. 'times', 'river', 'reverse'. */
  kind: string;
  prompt: string;
  /** Base phrasing, plus the constraint's phrasing when there is one: 'facts.river.2+uppercase.0'. */
  phrasingId: string;
  /** True when the base phrasing is one reserved for evaluation. */
  heldoutPhrasing: boolean;
  /** False for a question about something that does not exist: the right answer says it does not know. */
  answerable: boolean;
  constraint: Constraint | null;
  /** The ideal answer a demonstrator would write. */
  reference: string;
  /** Other good answers (a demonstrator's light variations); all pass check(). */
  variants: string[];
  /** Plausible wrong answers in the reference's format; all fail check() on correctness. */
  wrong: string[];
  check(response: string): CheckResult;
}

export const CONSTRAINT_PHRASINGS: Record<Constraint, Phrasing[]> = {
  one_word: phrasings(
    'one_word',
    ['Answer in one word.', 'Use one word.', 'One word only.'],
    ['Reply with a single word.'],
  ),
  digits: phrasings(
    'digits',
    ['Answer with digits only.', 'Digits only.', 'Give just the number.'],
    ['Reply with only the number.'],
  ),
  lowercase: phrasings(
    'lowercase',
    ['Answer in lowercase.', 'Use lowercase only.', 'Write it in lowercase.'],
    ['No capital letters.'],
  ),
  uppercase: phrasings(
    'uppercase',
    ['Answer in capitals.', 'Use capital letters only.', 'Write it all in caps.'],
    ['Reply in upper case.'],
  ),
  bullets: phrasings(
    'bullets',
    ['Use three bullet points.', 'Answer as three bullets.', 'Give three bullet points.'],
    ['Reply as a bullet list.'],
  ),
};

function fill(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (!(name in vars)) throw new Error(`template "${template}" needs {${name}}`);
    return String(vars[name]);
  });
}

function format(content: Content, constraint: Constraint | null): string {
  const joined = content.items.join(', ');
  switch (constraint) {
    case null:
      return joined;
    case 'one_word':
    case 'digits':
      return content.short ?? joined;
    case 'lowercase':
      return joined.toLowerCase();
    case 'uppercase':
      return joined.toUpperCase();
    case 'bullets':
      return content.items.map((x) => `- ${x}`).join('\n');
  }
}

export interface TaskOptions {
  /** 'train' draws only training phrasings; 'heldout' a held-out base phrasing (constraint phrasing: any). */
  phrasing: 'train' | 'heldout';
  /** Restrict to one family. */
  family?: Family;
  /** Probability of adding a format constraint when the kind allows one (default 0.35). */
  constraintRate?: number;
  /** Probability that the task asks about a town that does not exist (default 0; ignored with `family`). */
  unanswerableRate?: number;
  /** Which list of non-existent towns such a task draws from (default 'train'; evaluation uses 'heldout'). */
  unknownNames?: 'train' | 'heldout';
}

/**
 * Draws one task. With probability `unanswerableRate` it asks about a town that does not exist (no format
 * constraint then: the honest answer is a sentence); otherwise families are equally likely, then kinds within the
 * family.
 */
export function generateTask(rng: Rng, opts: TaskOptions): Task {
  const unanswerable = opts.family === undefined && rng.next() < (opts.unanswerableRate ?? 0);
  const family = unanswerable ? 'facts' : (opts.family ?? pick(rng, FAMILIES));
  const kinds = KINDS.filter((k) => k.family === family && (!unanswerable || k.aboutUnknown));
  const unknownNames = opts.unknownNames === 'heldout' ? UNKNOWN_TOWNS_HELDOUT : UNKNOWN_TOWNS_TRAIN;
  const rate = unanswerable ? 0 : (opts.constraintRate ?? 0.35);
  for (;;) {
    const kind = pick(rng, kinds);
    const inst = unanswerable ? kind.aboutUnknown!(pick(rng, unknownNames), rng) : kind.make(rng);
    const base = pick(
      rng,
      kind.phrasings.filter((p) => p.heldout === (opts.phrasing === 'heldout')),
    );
    const allowed = kind.constraints.filter((c) => c !== 'bullets' || inst.good.items.length === 3);
    const constraint = allowed.length > 0 && rng.next() < rate ? pick(rng, allowed) : null;
    let prompt = fill(base.template, inst.vars);
    let phrasingId = base.id;
    if (constraint) {
      const cp = pick(
        rng,
        CONSTRAINT_PHRASINGS[constraint].filter((p) => opts.phrasing === 'heldout' || !p.heldout),
      );
      prompt += ` ${cp.template}`;
      phrasingId += `+${cp.id}`;
    }
    // Rare long combinations (long town name + long phrasing + constraint) are drawn again.
    if (prompt.length > MAX_PROMPT_CHARS) continue;
    const answer = inst.answer;
    return {
      id: `${kind.name}:${unanswerable ? 'unknown:' : ''}${inst.key}:${phrasingId}`,
      family,
      kind: kind.name,
      prompt,
      phrasingId,
      heldoutPhrasing: base.heldout,
      answerable: !unanswerable,
      constraint,
      reference: format(inst.good, constraint),
      variants: constraint ? [] : inst.variants.filter((v) => v.length <= MAX_ANSWER_CHARS),
      wrong: inst.bad.filter((b) => b.items.length > 0).map((b) => format(b, constraint)),
      check(response: string): CheckResult {
        const { correct, details } = checkAnswer(answer, response);
        const violation = constraintViolation(constraint, response);
        return {
          correct,
          constraintsMet: violation === null,
          attempted: attemptsAnswer(answer, response),
          details: violation ? `${details}; ${violation}` : details,
        };
      },
    };
  }
}
