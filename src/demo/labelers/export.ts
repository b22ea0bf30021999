/**
 * Labeled data as the JSONL records of DESIGN.md (store/jsonl.ts), so `instructkit sft|rm|ppo` read the demo's
 * files exactly as they read an export from the labeling store.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type DemonstrationRecord, type PromptRecord, type RankingRecord, toJsonl } from '../../store/jsonl.js';
import type { Rng } from '../../tensor/random.js';
import type { Labeler, LabelItem } from './labeler.js';

function labelerFor<T extends LabelItem>(labelers: readonly Labeler<T>[], i: number): Labeler<T> {
  if (labelers.length === 0) throw new Error('needs at least one labeler');
  return labelers[i % labelers.length];
}

/** One demonstration per task, labelers taking turns. */
export function demonstrationRecords<T extends LabelItem>(
  tasks: readonly T[],
  labelers: readonly Labeler<T>[],
  rng?: Rng,
): DemonstrationRecord[] {
  return tasks.map((task, i) => ({ prompt: task.prompt, completion: labelerFor(labelers, i).demonstrate(task, rng) }));
}

/** One ranking per task of its K responses, labelers taking turns; each record names its labeler. */
export function rankingRecords<T extends LabelItem>(
  tasks: readonly T[],
  responsesPerTask: readonly (readonly string[])[],
  labelers: readonly Labeler<T>[],
): RankingRecord[] {
  if (tasks.length !== responsesPerTask.length) {
    throw new Error(`rankingRecords: ${tasks.length} tasks but ${responsesPerTask.length} response sets`);
  }
  return tasks.map((task, i) => {
    const labeler = labelerFor(labelers, i);
    const responses = [...responsesPerTask[i]];
    const label = labeler.rank(task, responses);
    return {
      prompt: task.prompt,
      responses,
      ranking: label.ranking,
      labeler: labeler.id,
      likert: label.likert,
      flags: label.flags as Record<string, number[]>,
    };
  });
}

export function promptRecords(tasks: readonly LabelItem[]): PromptRecord[] {
  return tasks.map((t) => ({ prompt: t.prompt }));
}

/** Writes records as JSONL, creating the folder. */
export function writeJsonlFile(path: string, records: Iterable<object>): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, toJsonl(records));
}
