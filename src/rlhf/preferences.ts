// Preference pairs for DPO from the comparison files rm reads: a pairwise line gives one pair, a K-way ranking all
// C(K,2) (better over worse; tied responses make no pair, as in the paper). readComparisons, through the store's validators, has already
// refused degenerate lines with file:line and the field: an empty response, chosen == rejected, two equal responses.
import { orderedPairs } from '../store/ranking.js';
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
    for (const [better, worse] of orderedPairs(e.ranking))
      pairs.push({
        chosen: e.sequences[better],
        rejected: e.sequences[worse],
        promptLength,
        refChosen: 0,
        refRejected: 0,
        file: e.file,
        line: e.line,
      });
  }
  return { records: pairs, skipped: encoded.skipped };
}
