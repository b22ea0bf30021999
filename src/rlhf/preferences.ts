// Preference pairs for DPO from the comparison files rm reads: pairwise lines (one pair) and K-way rankings (all
// C(K,2) pairs, best over worse). Degenerate comparisons (an empty response, two responses alike) are refused with
// file:line and the field, before any compute.
import { readFileSync } from 'node:fs';
import type { LineError } from '../store/jsonl.js';
import {
  type ComparisonFormat,
  DataError,
  encodeRankings,
  type Formatter,
  type Located,
  type Ranking,
  type Read,
  type ReadOptions,
  readComparisons,
} from './data.js';

/** One preference pair as ids: both sequences start with the same promptLength prompt tokens. */
export interface DpoPair extends Located {
  chosen: number[];
  rejected: number[];
  promptLength: number;
  /** The reference model's log-probs of the two responses, filled in once before training. */
  refChosen: number;
  refRejected: number;
}

/** How a response of a comparison is named in errors: `"responses[i]"`, or `"chosen"` / `"rejected"`. */
export type FieldNamer = (r: Ranking, response: number) => string;

/**
 * Refuses degenerate comparisons before they become pairs: an empty response, or two responses of one line with
 * the same text (a pair of them teaches nothing and its loss is a constant). Rankings have no ties, so every other
 * pair of a K-way ranking counts: C(K, 2) pairs per line.
 */
export function degenerateComparisons(
  records: Ranking[],
  name: FieldNamer = (_r, i) => `"responses[${i}]"`,
): LineError[] {
  const errors: LineError[] = [];
  for (const r of records) {
    const at = { file: r.file, line: r.line };
    const empty = r.responses.findIndex((t) => t.trim() === '');
    if (empty >= 0) {
      errors.push({ ...at, message: `${name(r, empty)} is empty; every response of a comparison needs text` });
      continue;
    }
    const first = new Map<string, number>();
    for (const [i, t] of r.responses.entries()) {
      const j = first.get(t);
      if (j !== undefined) {
        errors.push({ ...at, message: `${name(r, j)} and ${name(r, i)} are the same text: nothing to prefer` });
        break;
      }
      first.set(t, i);
    }
  }
  return errors;
}

// Names a pairwise line's two responses by their own fields; readComparisons turned them into responses [chosen,
// rejected]. Only lines with an error are looked at again.
function fieldNamer(file: string): FieldNamer {
  let lines: string[] | null = null;
  return (r, i) => {
    lines ??= readFileSync(file, 'utf8').split('\n');
    let pairwise = false;
    try {
      const o = JSON.parse(lines[r.line - 1]);
      pairwise = typeof o === 'object' && o !== null && 'chosen' in o;
    } catch {
      // parsed before, so this does not happen
    }
    return pairwise ? (i === 0 ? '"chosen"' : '"rejected"') : `"responses[${i}]"`;
  };
}

/** Reads comparisons (pairwise or rankings, see readComparisons) and refuses degenerate ones with file:line. */
export function readPreferences(file: string, format: ComparisonFormat, opts: ReadOptions = {}): Read<Ranking> {
  const read = readComparisons(file, format, opts);
  const errors = degenerateComparisons(read.records, fieldNamer(file));
  if (errors.length > 0 && !opts.skipBad) {
    const e = new DataError(errors);
    e.message += '\nfix or remove these lines, or pass --skip-bad to leave them out';
    throw e;
  }
  const bad = new Set(errors.map((e) => e.line));
  const records = read.records.filter((r) => !bad.has(r.line));
  if (records.length === 0) throw new Error(`${file}: no usable comparisons (every line is degenerate)`);
  return { records, skipped: [...read.skipped, ...errors] };
}

/** Tokenizes comparisons (prompt in the chat template, as sft and rm) and expands each into all its pairs. */
export function encodePairs(
  records: Ranking[],
  fmt: Formatter,
  context: number,
  opts: ReadOptions = {},
): Read<DpoPair> {
  const encoded = encodeRankings(records, fmt, context, opts);
  const source = new Map(records.map((r) => [`${r.file}:${r.line}`, r]));
  const pairs: DpoPair[] = [];
  for (const e of encoded.records) {
    const r = source.get(`${e.file}:${e.line}`)!;
    const promptLength = fmt.prompt(r.prompt, r.context).length;
    for (let i = 0; i < e.ranking.length; i++)
      for (let j = i + 1; j < e.ranking.length; j++)
        pairs.push({
          chosen: e.sequences[e.ranking[i]],
          rejected: e.sequences[e.ranking[j]],
          promptLength,
          refChosen: 0,
          refRejected: 0,
          file: e.file,
          line: e.line,
        });
  }
  return { records: pairs, skipped: encoded.skipped };
}
