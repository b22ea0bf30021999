/**
 * JSONL import/export: parsing with per-line validation (errors carry file:line), and serialisation.
 * Formats are the ones in DESIGN.md; exports feed `instructkit sft|rm|ppo` unchanged.
 */
import { isPermutation } from './agreement.js';
import { type Choice, FLAGS, type Split } from './schema.js';

export interface PromptRecord {
  prompt: string;
  split?: Split;
}
export interface CandidateRecord {
  prompt: string;
  responses: string[];
  model?: string;
  split?: Split;
}
export interface DemonstrationRecord {
  prompt: string;
  completion: string;
  /** The conversation before the final assistant turn, when a `messages` line has a system turn or several turns. */
  context?: ChatTurn[];
  split?: Split;
}
export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
export interface RankingRecord {
  prompt: string;
  responses: string[];
  ranking: number[];
  labeler?: string;
  likert?: number[];
  flags?: Record<string, number[]>;
  split?: Split;
}
export interface PairwiseRecord {
  prompt: string;
  chosen: string;
  rejected: string;
}
export interface EvalRecord {
  prompt: string;
  model_a: string;
  model_b: string;
  response_a: string;
  response_b: string;
  winner: Choice;
  labeler?: string;
}

export type ImportKind = 'prompts' | 'candidates' | 'demonstrations' | 'rankings' | 'pairwise' | 'eval' | 'gold';
export const IMPORT_KINDS: readonly ImportKind[] = [
  'prompts',
  'candidates',
  'demonstrations',
  'rankings',
  'pairwise',
  'eval',
  'gold',
];
export type ExportKind = 'prompts' | 'demonstrations' | 'rankings' | 'pairwise' | 'eval';
export const EXPORT_KINDS: readonly ExportKind[] = ['prompts', 'demonstrations', 'rankings', 'pairwise', 'eval'];

export interface RecordOf {
  prompts: PromptRecord;
  candidates: CandidateRecord;
  demonstrations: DemonstrationRecord;
  rankings: RankingRecord;
  pairwise: PairwiseRecord;
  eval: EvalRecord;
  gold: RankingRecord;
}

export interface LineError {
  file: string;
  line: number;
  message: string;
}

export interface ParseResult<T> {
  records: T[];
  errors: LineError[];
}

export interface ValidateOptions {
  /** Maximum characters in any one text field. */
  maxTextChars: number;
  /** Allowed K (number of responses) for rankings/candidates. */
  minK?: number;
  maxK?: number;
  /**
   * Accept `messages` demonstrations with a leading system turn and several user/assistant turns (the trainer
   * renders them with the chat template). Off by default: the store keeps one prompt and one completion.
   */
  multiTurn?: boolean;
}

type Obj = Record<string, unknown>;

class Invalid extends Error {}

function text(o: Obj, key: string, opts: ValidateOptions, optional = false): string | undefined {
  const v = o[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string') throw new Invalid(`"${key}" must be a string`);
  if (v.length > opts.maxTextChars) throw new Invalid(`"${key}" is longer than ${opts.maxTextChars} characters`);
  return v;
}

function split(o: Obj): Split | undefined {
  const v = o.split;
  if (v === undefined) return undefined;
  if (v !== 'training' && v !== 'heldout') throw new Invalid('"split" must be "training" or "heldout"');
  return v;
}

function texts(o: Obj, key: string, opts: ValidateOptions): string[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new Invalid(`"${key}" must be an array of strings`);
  const minK = opts.minK ?? 2;
  const maxK = opts.maxK ?? 9;
  if (v.length < minK || v.length > maxK) throw new Invalid(`"${key}" must hold ${minK}..${maxK} items`);
  v.forEach((s, i) => {
    if (typeof s !== 'string') throw new Invalid(`"${key}[${i}]" must be a string`);
    if (s.length > opts.maxTextChars)
      throw new Invalid(`"${key}[${i}]" is longer than ${opts.maxTextChars} characters`);
  });
  return v as string[];
}

/** `[system?] user assistant (user assistant)*`: roles alternate and the last turn is the assistant's. */
function chatTurns(v: unknown, opts: ValidateOptions): ChatTurn[] {
  const shape =
    '"messages" must be [{"role":"system"}?, {"role":"user"}, {"role":"assistant"}, ...] ending with the assistant';
  if (!Array.isArray(v) || v.length < 2) throw new Invalid(shape);
  const first = (v[0] as Obj)?.role === 'system' ? 1 : 0;
  if ((v.length - first) % 2 !== 0 || v.length - first < 2) throw new Invalid(shape);
  return v.map((m, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      throw new Invalid(`"messages[${i}]" must be an object`);
    const want = i < first ? 'system' : (i - first) % 2 === 0 ? 'user' : 'assistant';
    if ((m as Obj).role !== want) throw new Invalid(`"messages[${i}].role" must be "${want}"; ${shape}`);
    const content = (m as Obj).content;
    if (typeof content !== 'string') throw new Invalid(`"messages[${i}].content" must be a string`);
    if (content.length > opts.maxTextChars)
      throw new Invalid(`"messages[${i}].content" is longer than ${opts.maxTextChars} characters`);
    return { role: want, content };
  });
}

/** Checks a ranking label against K responses; returns an error message or null. */
export function rankingLabelError(
  label: { ranking: unknown; likert?: unknown; flags?: unknown },
  k: number,
): string | null {
  const { ranking, likert, flags } = label;
  if (!Array.isArray(ranking) || !isPermutation(ranking as number[], k)) {
    return `"ranking" must be a permutation of 0..${k - 1} (best → worst)`;
  }
  if (likert !== undefined && likert !== null) {
    if (!Array.isArray(likert) || likert.length !== k) return `"likert" must hold ${k} scores`;
    for (const s of likert) if (!Number.isInteger(s) || s < 1 || s > 7) return '"likert" scores must be integers 1..7';
  }
  if (flags !== undefined && flags !== null) {
    if (typeof flags !== 'object' || Array.isArray(flags))
      return '"flags" must be an object {flag: [response indices]}';
    for (const [name, idx] of Object.entries(flags as Obj)) {
      if (!(FLAGS as readonly string[]).includes(name)) return `unknown flag "${name}"; known: ${FLAGS.join(', ')}`;
      if (
        !Array.isArray(idx) ||
        idx.some((i) => !Number.isInteger(i) || i < 0 || i >= k) ||
        new Set(idx).size !== idx.length
      ) {
        return `flag "${name}" must list distinct response indices 0..${k - 1}`;
      }
    }
  }
  return null;
}

const validators: { [K in ImportKind]: (o: Obj, opts: ValidateOptions) => RecordOf[K] } = {
  prompts(o, opts) {
    return { prompt: text(o, 'prompt', opts)!, split: split(o) };
  },
  candidates(o, opts) {
    const model = text(o, 'model', opts, true);
    return { prompt: text(o, 'prompt', opts)!, responses: texts(o, 'responses', opts), model, split: split(o) };
  },
  demonstrations(o, opts) {
    if (o.messages !== undefined) {
      const turns = chatTurns(o.messages, opts);
      const last = turns.length - 1;
      const single = turns.length === 2 && turns[0].role === 'user';
      if (!single && !opts.multiTurn)
        throw new Invalid(
          '"messages" must be [{"role":"user"}, {"role":"assistant"}] (multi-turn import not supported)',
        );
      return {
        prompt: turns[last - 1].content,
        completion: turns[last].content,
        ...(single ? {} : { context: turns.slice(0, last) }),
        split: split(o),
      };
    }
    return { prompt: text(o, 'prompt', opts)!, completion: text(o, 'completion', opts)!, split: split(o) };
  },
  rankings(o, opts) {
    const responses = texts(o, 'responses', opts);
    const err = rankingLabelError({ ranking: o.ranking, likert: o.likert, flags: o.flags }, responses.length);
    if (err) throw new Invalid(err);
    return {
      prompt: text(o, 'prompt', opts)!,
      responses,
      ranking: o.ranking as number[],
      labeler: text(o, 'labeler', opts, true),
      likert: (o.likert ?? undefined) as number[] | undefined,
      flags: (o.flags ?? undefined) as Record<string, number[]> | undefined,
      split: split(o),
    };
  },
  pairwise(o, opts) {
    return { prompt: text(o, 'prompt', opts)!, chosen: text(o, 'chosen', opts)!, rejected: text(o, 'rejected', opts)! };
  },
  eval(o, opts) {
    const winner = o.winner;
    if (winner !== 'a' && winner !== 'b' && winner !== 'tie') throw new Invalid('"winner" must be "a", "b" or "tie"');
    return {
      prompt: text(o, 'prompt', opts)!,
      model_a: text(o, 'model_a', opts)!,
      model_b: text(o, 'model_b', opts)!,
      response_a: text(o, 'response_a', opts)!,
      response_b: text(o, 'response_b', opts)!,
      winner,
      labeler: text(o, 'labeler', opts, true),
    };
  },
  gold(o, opts) {
    return validators.rankings(o, opts);
  },
};

/** Parses JSONL text; blank lines are skipped; every bad line is reported as file:line. */
export function parseJsonl<K extends ImportKind>(
  kind: K,
  source: string,
  opts: ValidateOptions,
  file = '<input>',
): ParseResult<RecordOf[K]> {
  const records: RecordOf[K][] = [];
  const errors: LineError[] = [];
  const lines = source.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '') continue;
    try {
      let o: unknown;
      try {
        o = JSON.parse(raw);
      } catch (e) {
        throw new Invalid(`invalid JSON: ${(e as Error).message}`);
      }
      if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Invalid('each line must be a JSON object');
      records.push(validators[kind](o as Obj, opts));
    } catch (e) {
      if (!(e instanceof Invalid)) throw e;
      errors.push({ file, line: i + 1, message: e.message });
    }
  }
  return { records, errors };
}

export function formatLineError(e: LineError): string {
  return `${e.file}:${e.line}: ${e.message}`;
}

/** One JSON object per line, trailing newline. Undefined fields are dropped. */
export function toJsonl(records: Iterable<object>): string {
  let out = '';
  for (const r of records) out += `${JSON.stringify(r)}\n`;
  return out;
}
