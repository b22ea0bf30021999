/**
 * JSONL import/export: parsing with per-line validation (errors carry file:line), and serialisation.
 * Formats are the ones in DESIGN.md; exports feed `instructkit sft|rm|ppo` unchanged.
 */
import { orderedPairs, type RankingOrder, rankingShapeError } from './ranking.js';
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
  /** The conversation before the responses (system, earlier turns, the last user turn), when there is more than one user turn. */
  context?: ChatTurn[];
  responses: string[];
  /** Best → worst; tied responses as an inner array (see ranking.ts). */
  ranking: RankingOrder;
  labeler?: string;
  likert?: number[];
  flags?: Record<string, number[]>;
  /** The model version that wrote each response (as `likert`, one per response), when known. */
  models?: string[];
  split?: Split;
}
export interface PairwiseRecord {
  prompt: string;
  /** As in RankingRecord: a conversational pair's turns before the two answers. */
  context?: ChatTurn[];
  chosen: string;
  rejected: string;
  /** The model versions that wrote the two answers, when known (metadata: trainers read only the texts). */
  chosen_model?: string;
  rejected_model?: string;
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
   * Accept conversations with a system turn or several user/assistant turns (`messages` demonstrations, TRL's
   * conversational pairs; the trainer renders them with the chat template). Off by default: the store keeps one
   * prompt and one completion.
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

/** A text that is an answer or a prompt: never empty or only whitespace. */
function filled(o: Obj, key: string, opts: ValidateOptions): string {
  const v = text(o, key, opts)!;
  if (v.trim() === '') throw new Invalid(`"${key}" is empty`);
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
  const seen = new Map<string, number>();
  v.forEach((s, i) => {
    if (typeof s !== 'string') throw new Invalid(`"${key}[${i}]" must be a string`);
    if (s.length > opts.maxTextChars)
      throw new Invalid(`"${key}[${i}]" is longer than ${opts.maxTextChars} characters`);
    if (s.trim() === '') throw new Invalid(`"${key}[${i}]" is empty`);
    // Two equal answers would make a pair with chosen == rejected.
    const twin = seen.get(s.trim());
    if (twin !== undefined) throw new Invalid(`"${key}[${i}]" is the same text as "${key}[${twin}]"`);
    seen.set(s.trim(), i);
  });
  return v as string[];
}

/** An optional list of model names, one per response. */
function models(o: Obj, k: number, opts: ValidateOptions): string[] | undefined {
  const v = o.models;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length !== k || v.some((m) => typeof m !== 'string' || m.trim() === ''))
    throw new Invalid(`"models" must hold ${k} model names, one per response`);
  if (v.some((m: string) => m.length > opts.maxTextChars))
    throw new Invalid(`"models" names are longer than ${opts.maxTextChars} characters`);
  return v as string[];
}

/** `[system?] user assistant (user assistant)*`: roles alternate and the last turn is the assistant's. */
function chatTurns(v: unknown, opts: ValidateOptions, field = 'messages'): ChatTurn[] {
  const shape = `"${field}" must be [{"role":"system"}?, {"role":"user"}, {"role":"assistant"}, ...] ending with the assistant`;
  if (!Array.isArray(v) || v.length < 2) throw new Invalid(shape);
  const first = (v[0] as Obj)?.role === 'system' ? 1 : 0;
  if ((v.length - first) % 2 !== 0 || v.length - first < 2) throw new Invalid(shape);
  return v.map((m, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      throw new Invalid(`"${field}[${i}]" must be an object`);
    const want = i < first ? 'system' : (i - first) % 2 === 0 ? 'user' : 'assistant';
    if ((m as Obj).role !== want) throw new Invalid(`"${field}[${i}].role" must be "${want}"; ${shape}`);
    const content = (m as Obj).content;
    if (typeof content !== 'string') throw new Invalid(`"${field}[${i}].content" must be a string`);
    if (content.length > opts.maxTextChars)
      throw new Invalid(`"${field}[${i}].content" is longer than ${opts.maxTextChars} characters`);
    if (want !== 'system' && content.trim() === '') throw new Invalid(`"${field}[${i}].content" is empty`);
    return { role: want, content };
  });
}

/** A checked conversation as the trainers see it: the last user turn, the turns before the answer, the answer. */
function exchange(
  turns: ChatTurn[],
  o: Obj,
  opts: ValidateOptions,
): { prompt: string; completion: string; context?: ChatTurn[]; split?: Split } {
  const last = turns.length - 1;
  const single = turns.length === 2 && turns[0].role === 'user';
  if (!single && !opts.multiTurn)
    throw new Invalid('only one user turn and one assistant turn can be imported here (no system or earlier turns)');
  return {
    prompt: turns[last - 1].content,
    completion: turns[last].content,
    ...(single ? {} : { context: turns.slice(0, last) }),
    split: split(o),
  };
}

/** A field holding a list of chat messages (TRL's conversational format); undefined when it is anything else. */
function messageList(o: Obj, key: string): unknown[] | undefined {
  const v = o[key];
  return Array.isArray(v) ? v : undefined;
}

// TRL's implicit prompt: chosen and rejected are whole texts; the prompt is what they share. The cut goes back to
// the start of the word where they first differ ("four" and "five" share no "f"), and a space before it goes with
// the answers, as in TRL.
function implicitPrompt(chosen: string, rejected: string): PairwiseRecord {
  let i = 0;
  while (i < chosen.length && i < rejected.length && chosen[i] === rejected[i]) i++;
  if (chosen === rejected) throw new Invalid('"chosen" and "rejected" are the same text');
  while (i > 0 && !/\s/.test(chosen[i - 1])) i--;
  if (i > 0 && chosen[i - 1] === ' ') i--;
  if (i === 0) throw new Invalid('"chosen" and "rejected" share no beginning to serve as the prompt: add "prompt"');
  return { prompt: chosen.slice(0, i), chosen: chosen.slice(i), rejected: rejected.slice(i) };
}

function distinctPair(r: PairwiseRecord): PairwiseRecord {
  if (r.chosen.trim() === r.rejected.trim()) throw new Invalid('"chosen" and "rejected" are the same text');
  return r;
}

/** Checks a ranking label against K responses; returns an error message or null. */
export function rankingLabelError(
  label: { ranking: unknown; likert?: unknown; flags?: unknown },
  k: number,
): string | null {
  const { ranking, likert, flags } = label;
  const shape = rankingShapeError(ranking, k);
  if (shape) return shape;
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
    const turns = messageList(o, 'prompt');
    if (turns) {
      // A conversational prompt: one user turn (TRL's {"prompt": [{"role": "user", ...}]}).
      if (turns.length !== 1 || (turns[0] as Obj)?.role !== 'user' || typeof (turns[0] as Obj).content !== 'string')
        throw new Invalid('"prompt" as a list must hold one {"role":"user","content":"..."} message');
      const content = (turns[0] as Obj).content as string;
      if (content.trim() === '') throw new Invalid('"prompt" is empty');
      if (content.length > opts.maxTextChars)
        throw new Invalid(`"prompt" is longer than ${opts.maxTextChars} characters`);
      return { prompt: content, split: split(o) };
    }
    return { prompt: filled(o, 'prompt', opts), split: split(o) };
  },
  candidates(o, opts) {
    const model = text(o, 'model', opts, true);
    return { prompt: filled(o, 'prompt', opts), responses: texts(o, 'responses', opts), model, split: split(o) };
  },
  demonstrations(o, opts) {
    if (o.messages !== undefined) return exchange(chatTurns(o.messages, opts), o, opts);
    const promptTurns = messageList(o, 'prompt');
    if (promptTurns) {
      // TRL's conversational prompt-completion: the prompt's turns, then the assistant's.
      const completion = messageList(o, 'completion') ?? [];
      return exchange(chatTurns([...promptTurns, ...completion], opts, 'prompt + completion'), o, opts);
    }
    if (o.text !== undefined && o.prompt === undefined)
      throw new Invalid(
        '"text" lines are plain text without a prompt: give "prompt" and "completion" (or "messages"), or train on them with instructkit pretrain --corpus',
      );
    return { prompt: filled(o, 'prompt', opts), completion: filled(o, 'completion', opts), split: split(o) };
  },
  rankings(o, opts) {
    const responses = texts(o, 'responses', opts);
    const writers = models(o, responses.length, opts);
    const err = rankingLabelError({ ranking: o.ranking, likert: o.likert, flags: o.flags }, responses.length);
    if (err) throw new Invalid(err);
    if (orderedPairs(o.ranking as RankingOrder).length === 0)
      throw new Invalid('"ranking" is one tie: it orders nothing and makes no pair (drop the line)');
    return {
      prompt: filled(o, 'prompt', opts),
      responses,
      ranking: o.ranking as RankingOrder,
      labeler: text(o, 'labeler', opts, true),
      likert: (o.likert ?? undefined) as number[] | undefined,
      flags: (o.flags ?? undefined) as Record<string, number[]> | undefined,
      ...(writers ? { models: writers } : {}),
      split: split(o),
    };
  },
  pairwise(o, opts) {
    const promptTurns = messageList(o, 'prompt');
    const chosenTurns = messageList(o, 'chosen');
    const rejectedTurns = messageList(o, 'rejected');
    if (!promptTurns && !chosenTurns && !rejectedTurns) {
      if (o.prompt === undefined && typeof o.chosen === 'string' && typeof o.rejected === 'string') {
        for (const key of ['chosen', 'rejected']) text(o, key, opts);
        return implicitPrompt(o.chosen, o.rejected);
      }
      return distinctPair({
        prompt: filled(o, 'prompt', opts),
        chosen: filled(o, 'chosen', opts),
        rejected: filled(o, 'rejected', opts),
      });
    }
    // TRL's conversational pairs: prompt turns plus one answer each, or two whole conversations that share every
    // turn but the last.
    if (!chosenTurns || !rejectedTurns)
      throw new Invalid('"chosen" and "rejected" must both be lists of messages when either is');
    const chosen = exchange(chatTurns([...(promptTurns ?? []), ...chosenTurns], opts, 'chosen'), o, opts);
    const rejected = exchange(chatTurns([...(promptTurns ?? []), ...rejectedTurns], opts, 'rejected'), o, opts);
    const before = (e: { prompt: string; context?: ChatTurn[] }) =>
      JSON.stringify(e.context ?? [{ role: 'user', content: e.prompt }]);
    if (before(chosen) !== before(rejected))
      throw new Invalid('"chosen" and "rejected" must share every turn but the last assistant answer');
    return distinctPair({
      prompt: chosen.prompt,
      chosen: chosen.completion,
      rejected: rejected.completion,
      ...(chosen.context ? { context: chosen.context } : {}),
    });
  },
  eval(o, opts) {
    const winner = o.winner;
    if (winner !== 'a' && winner !== 'b' && winner !== 'tie') throw new Invalid('"winner" must be "a", "b" or "tie"');
    return {
      prompt: filled(o, 'prompt', opts),
      model_a: text(o, 'model_a', opts)!,
      model_b: text(o, 'model_b', opts)!,
      response_a: filled(o, 'response_a', opts),
      response_b: filled(o, 'response_b', opts),
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
