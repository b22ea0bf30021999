/**
 * Simulated labelers for the miniature world. Each judges a response on what the paper's labelers weigh —
 * correctness and honesty first (helpful and truthful), then following the instruction's constraints, concision and
 * tone — with its own weights and Gaussian
 * noise, so two labelers disagree about as often as people do. Pools of them stand in for the training and
 * held-out labeler groups.
 */
import { Rng } from '../../tensor/random.js';
import { abstains } from '../world/checker.js';
import type { Task } from '../world/tasks.js';
import { type Labeler, type LabelerGroup, type RankLabel, rankLabelFromScores, type Score } from './labeler.js';
import { PLAIN_STYLE, type WritingStyle, writeDemonstration } from './writing.js';

export interface LabelerWeights {
  correctness: number;
  /** Reward for asserting nothing false: a right answer or an honest "I do not know", not an invented one. */
  honesty: number;
  /** Reward for following the instruction: an answer to what was asked, in the asked format. */
  constraints: number;
  /** Reward for not going past the needed content. */
  concision: number;
  /** Reward for no rambling, hedging or repetition. */
  tone: number;
  /** Liking (or, when negative, dislike) for a polite opener such as "Sure!". */
  politeness: number;
  /** Standard deviation of the Gaussian noise added to each judgement. */
  noise: number;
}

/** What a labeler sees in a response, each in [0, 1]. */
export interface Features {
  correct: number;
  /**
   * Right, or honest about not knowing ("I do not know"); 0 for a wrong or invented answer and for prose that
   * dodges the question (which is not honest about not knowing either).
   */
  honest: number;
  /** Answers what was asked (rightly or not) and obeys the format constraint. */
  followsInstruction: number;
  concision: number;
  tone: number;
  polite: number;
}

const FILLER = /\b(well|hmm|um|basically|i think|i guess|maybe|let me (think|see)|i hope that helps|my guess)\b/i;
const POLITE_OPENER = /^(sure|of course|certainly|happy to help)\b/i;

function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}

/** A word (letters or digits) said three times or more reads as degenerate repetition. */
function repeats(text: string): boolean {
  const counts = new Map<string, number>();
  for (const w of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    const c = (counts.get(w) ?? 0) + 1;
    if (c >= 3) return true;
    counts.set(w, c);
  }
  return false;
}

/** The features every simulated labeler reads; labelers differ only in how they weigh them. */
export function responseFeatures(task: Task, response: string): Features {
  const r = response.trim();
  if (r === '') return { correct: 0, honest: 0, followsInstruction: 0, concision: 0, tone: 0, polite: 0 };
  const check = task.check(r);
  const extra = Math.max(0, words(r).length - words(task.reference).length);
  return {
    correct: check.correct ? 1 : 0,
    honest: check.correct || abstains(r) ? 1 : 0,
    followsInstruction: check.attempted && check.constraintsMet ? 1 : 0,
    concision: Math.exp(-extra / 4),
    tone: Math.max(0, 1 - (FILLER.test(r) ? 0.5 : 0) - (repeats(r) ? 0.5 : 0)),
    polite: POLITE_OPENER.test(r) ? 1 : 0,
  };
}

/** What a labeler with these weights thinks of a response with these features, before its noise. */
export function cleanJudgement(w: LabelerWeights, f: Features): number {
  return (
    w.correctness * f.correct +
    w.honesty * f.honest +
    w.constraints * f.followsInstruction +
    w.concision * f.concision +
    w.tone * f.tone +
    w.politeness * f.polite
  );
}

/** FNV-1a over the text: a 32-bit seed per judgement. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class SimulatedLabeler implements Labeler<Task> {
  /** Draws the habits of the demonstrations this labeler writes. */
  private readonly rng: Rng;

  constructor(
    readonly id: string,
    readonly group: LabelerGroup,
    readonly weights: LabelerWeights,
    private readonly seed: number,
    /** How this labeler writes demonstrations (judging does not depend on it). */
    readonly style: WritingStyle = PLAIN_STYLE,
  ) {
    for (const [name, w] of Object.entries(weights)) {
      if (!Number.isFinite(w)) throw new Error(`SimulatedLabeler ${id}: weight "${name}" must be a finite number`);
    }
    for (const [name, rate] of Object.entries(style)) {
      if (typeof rate === 'number' && !(rate >= 0 && rate <= 1))
        throw new Error(`SimulatedLabeler ${id}: writing habit "${name}" must be a rate in [0, 1], got ${rate}`);
    }
    if (weights.noise < 0) throw new Error(`SimulatedLabeler ${id}: noise must be ≥ 0`);
    this.rng = new Rng(seed);
  }

  /**
   * The noise of this labeler's judgement of one response: drawn from the labeler, the prompt and the response alone,
   * so a judgement never depends on what else was judged before it (adding a model to an evaluation leaves the
   * other models' judgements as they were) and the same response is judged the same way wherever it appears.
   */
  private noise(task: Task, response: string): number {
    return new Rng(hash32(`${this.seed}\u0000${task.prompt}\u0000${response}`)).normal();
  }

  score(task: Task, response: string): Score {
    const f = responseFeatures(task, response);
    const w = this.weights;
    const value = cleanJudgement(w, f) + w.noise * this.noise(task, response);
    // Likert: the noisy value placed on the range a response could score with this labeler's weights.
    const lo = Math.min(0, w.politeness);
    const hi = w.correctness + w.honesty + w.constraints + w.concision + w.tone + Math.max(0, w.politeness);
    const unit = Math.min(1, Math.max(0, (value - lo) / (hi - lo)));
    const nonEmpty = response.trim() !== '';
    return {
      likert: 1 + Math.round(6 * unit),
      flags: {
        fails_to_follow_instruction: f.followsInstruction === 0,
        hallucination: nonEmpty && task.family === 'facts' && f.honest === 0,
      },
      value,
    };
  }

  rank(task: Task, responses: readonly string[]): RankLabel {
    return rankLabelFromScores(responses.map((r) => this.score(task, r)));
  }

  compare(task: Task, a: string, b: string): 'a' | 'b' {
    return this.score(task, a).value >= this.score(task, b).value ? 'a' : 'b';
  }

  demonstrate(task: Task, rng: Rng = this.rng): string {
    return writeDemonstration(task, this.style, rng);
  }
}
