/** Admin settings: typed, with defaults; stored as one JSON value per key. */
import { randomUUID } from 'node:crypto';
import { Aggregate } from './aggregate.js';

export interface Settings {
  /**
   * The CandidateSources (served versions, or imported pools by model name) that write ranking candidates: a task's K
   * are split evenly across them (see distinctCandidates), as the paper's rankings compared several models' outputs.
   */
  candidateModels: string[];
  /** Responses per ranking task (the paper's K, 4..9). */
  k: number;
  /** Share of new tasks (0..1) given to more than one labeler. */
  overlap: number;
  /** How many labelers an overlapping task goes to (>= 2). */
  overlapLabelers: number;
  /**
   * Served model versions that answer in chat (each reply comes from one of them at random; a comparison
   * turn shows two different ones when two or more are picked, so chat comparisons compare versions). Empty: the server's default model.
   */
  chatModels: string[];
  /** Every Nth chat reply shows two candidates and asks which is better (0 = never). */
  chatCompareEvery: number;
  /** Minimum screening score (pairwise agreement with gold, 0..1) to pass. */
  screeningPassThreshold: number;
  /** Whether labelers must pass screening before real tasks. */
  screeningRequired: boolean;
  /** Screening attempts a labeler gets before an admin must let them through (0 = no limit). */
  screeningMaxAttempts: number;
  /** Minutes a labeler has to submit an assignment before its task goes back to the pool (0 = no limit). */
  assignmentTimeoutMinutes: number;
  /** Share of ranking assignments (0..1) that are gold items not in the screening test, to keep measuring quality. */
  goldRate: number;
  /** The labeling guidelines shown beside every task (plain text; blank lines separate paragraphs, "- " lists). */
  guidelines: string;
}

export const DEFAULT_SETTINGS: Settings = {
  candidateModels: ['imported'],
  k: 4,
  overlap: 0.1,
  overlapLabelers: 2,
  chatModels: [],
  chatCompareEvery: 5,
  screeningPassThreshold: 0.75,
  screeningRequired: true,
  screeningMaxAttempts: 3,
  assignmentTimeoutMinutes: 120,
  goldRate: 0.05,
  guidelines: [
    'Rank by what helps the person most: a correct and honest answer first (say you do not know rather than guess),',
    'then one that follows the instruction and its format, then the clearer and shorter one.',
    '',
    '- Put two answers in the same place when neither is better.',
    '- Flag harmful, hateful or sexual content even when it is well written.',
    '- Skip a task you cannot judge; report a prompt that is broken, unclear or asks for something harmful.',
  ].join('\n'),
};

export const SETTING_LIMITS = {
  k: { min: 4, max: 9 },
  overlap: { min: 0, max: 1 },
  overlapLabelers: { min: 2, max: 20 },
  chatCompareEvery: { min: 0, max: 1000 },
  screeningPassThreshold: { min: 0, max: 1 },
  screeningMaxAttempts: { min: 0, max: 100 },
  assignmentTimeoutMinutes: { min: 0, max: 7 * 24 * 60 },
  goldRate: { min: 0, max: 1 },
} as const;

/**
 * The row whose value changes with every update. Sessions read it with the signed-in user (`Sessions.get`), so that
 * a process can reuse the settings it read until the revision moves, whichever app server moved it.
 */
export const SETTINGS_REVISION = 'revision';

/** The settings table: one row per changed key; absent keys read as their defaults. */
export class SettingsStore extends Aggregate {
  private cached?: { revision: string | null; settings: Settings };

  /**
   * The settings. Given the revision a request's session read, the copy this process read at that revision is
   * reused (a statement saved on hot routes); without one, they are read.
   */
  async get(revision?: string | null): Promise<Settings> {
    if (revision === undefined || this.cached?.revision !== revision) {
      const rows = await this.db.selectFrom('settings').selectAll().execute();
      const settings: Settings = { ...DEFAULT_SETTINGS };
      let read: string | null = null;
      for (const r of rows) {
        if (r.key === SETTINGS_REVISION) read = r.value;
        else if (r.key in settings) (settings as unknown as Record<string, unknown>)[r.key] = JSON.parse(r.value);
      }
      this.cached = { revision: read, settings };
    }
    return structuredClone(this.cached.settings);
  }

  async update(patch: Partial<Settings>): Promise<Settings> {
    return this.s.tx(async (s) => {
      const entries = Object.entries(patch).filter(([key, value]) => value !== undefined && key in DEFAULT_SETTINGS);
      for (const [key, value] of [...entries, [SETTINGS_REVISION, randomUUID()]]) {
        await s.db
          .insertInto('settings')
          .values({ key, value: JSON.stringify(value) })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value: JSON.stringify(value) }))
          .execute();
      }
      return s.settings.get();
    });
  }
}
