/**
 * What a labeler does, whether a simulated one or (later) an adapter over human labels in the store: score and
 * rank responses, pick the better of two, write a demonstration. Nothing here is specific to simulation.
 */
import type { Flag } from '../../store/schema.js';
import type { Rng } from '../../tensor/random.js';

/** The least a labeler needs to see: the prompt. Simulated labelers take world tasks, which also carry a checker. */
export interface LabelItem {
  prompt: string;
}

export type LabelerGroup = 'train' | 'heldout';

export interface Score {
  /** Overall quality, 1 (worst) .. 7 (best), as in the paper's labeling interface. */
  likert: number;
  flags: Partial<Record<Flag, boolean>>;
  /** The labeler's internal preference value; only its order matters. */
  value: number;
}

export interface RankLabel {
  /** Response indices, best → worst. */
  ranking: number[];
  likert: number[];
  /** Store format: flag → indices of the responses it applies to (flags that apply to none are left out). */
  flags: Partial<Record<Flag, number[]>>;
}

export interface Labeler<T extends LabelItem = LabelItem> {
  readonly id: string;
  readonly group: LabelerGroup;
  score(task: T, response: string): Score;
  rank(task: T, responses: readonly string[]): RankLabel;
  compare(task: T, a: string, b: string): 'a' | 'b';
  demonstrate(task: T, rng?: Rng): string;
}

/** Builds a ranking label from per-response scores: best value first, ties keep the given order. */
export function rankLabelFromScores(scores: readonly Score[]): RankLabel {
  const ranking = scores.map((_, i) => i).sort((i, j) => scores[j].value - scores[i].value || i - j);
  const flags: Partial<Record<Flag, number[]>> = {};
  scores.forEach((s, i) => {
    for (const [name, on] of Object.entries(s.flags) as [Flag, boolean][]) {
      if (on) (flags[name] ??= []).push(i);
    }
  });
  return { ranking, likert: scores.map((s) => s.likert), flags };
}
