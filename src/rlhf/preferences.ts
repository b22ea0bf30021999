// Preference pairs for DPO from the comparison files rm reads: a pairwise line gives one pair, a K-way ranking all
// C(K,2) (best over worse; rankings have no ties). readComparisons, through the store's validators, has already
// refused degenerate lines with file:line and the field: an empty response, chosen == rejected, two equal responses.
import type { Formatter } from '../tokenizer/index.js';
import { encodeRankings, type Located, type Ranking, type Read, type ReadOptions } from './data.js';

/** One preference pair as ids: both sequences start with the same promptLength prompt tokens. */
export interface DpoPair extends Located {
  chosen: number[];
  rejected: number[];
  promptLength: number;
  /** The reference model's log-probs of the two responses, filled in once before training. */
  refChosen: number;
  refRejected: number;
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
