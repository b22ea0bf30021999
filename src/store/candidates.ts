/** Where ranking / A/B candidates come from, and how a task gets distinct ones. */
import type { Store } from './store.js';

export interface CandidateSource {
  /** Returns k candidate responses for the prompt (rejects when it cannot). */
  generate(prompt: string, k: number): Promise<string[]>;
}

/** Candidates imported from JSONL (`{"prompt","responses":[...],"model"?}`) into the store's candidate pool. */
export class ImportedCandidates implements CandidateSource {
  constructor(
    private readonly store: Store,
    readonly model = 'imported',
  ) {}

  /** The pool's first k distinct texts (fewer when the pool holds fewer). */
  async generate(prompt: string, k: number): Promise<string[]> {
    const pool = [...new Set(await this.store.prompts.pooledCandidates(prompt, this.model))];
    if (pool.length === 0) throw new Error(`no imported "${this.model}" candidates for this prompt, need ${k}`);
    return pool.slice(0, k);
  }
}

/**
 * One answer from each of two models for an A/B task, in the order [a, b]. An empty answer or the same answer from
 * both (common once two versions of one lineage agree on a short prompt) is asked again, up to `retries` times, as
 * distinctCandidates does; then it rejects (nothing to compare).
 */
export async function abCandidates(sourceA: CandidateSource, sourceB: CandidateSource, prompt: string, retries = 3) {
  for (let attempt = 0; ; attempt++) {
    const [a = ''] = await sourceA.generate(prompt, 1);
    const [b = ''] = await sourceB.generate(prompt, 1);
    if (a.trim() && b.trim() && a.trim() !== b.trim()) return [a, b] as const;
    if (attempt >= retries) {
      throw new Error(`the two models gave an empty or the same answer ${retries + 1} times; nothing to compare`);
    }
  }
}

/** A candidate source under the model name recorded beside each answer it writes. */
export interface NamedSource {
  name: string;
  source: CandidateSource;
}

/** A candidate answer and the model version that wrote it. */
export interface Candidate {
  text: string;
  model: string;
}

/** n split as evenly as possible over m parts, the first n mod m parts one larger. */
function evenShares(n: number, m: number): number[] {
  return Array.from({ length: m }, (_, i) => Math.floor(n / m) + (i < n % m ? 1 : 0));
}

/**
 * Up to k distinct, non-blank candidates for a prompt from one or several sources. K is split evenly across the
 * sources, the remainder going to the sources first in turn from `turn` on (the caller passes the prompt's id, so
 * over many prompts every source writes its share; with more sources than K, each prompt gets K of them in turn): every ranking then compares versions with
 * each other as well as samples of one version. What repeats (across sources too, compared without surrounding
 * whitespace) or says nothing is dropped, and the missing ones are asked again of all the sources still answering, up
 * to `retries` times; a source that fails is left out for this prompt. Too few distinct answers shrink K; fewer than
 * two make no ranking: that rejects, naming what the sources said.
 */
export async function distinctCandidates(
  sources: readonly NamedSource[],
  prompt: string,
  k: number,
  { retries = 3, turn = 0 } = {},
): Promise<Candidate[]> {
  const out: Candidate[] = [];
  const seen = new Set<string>();
  const failures: string[] = [];
  let live = sources.map((_, i) => sources[(i + turn) % sources.length]);
  for (let round = 0; round <= retries && out.length < k && live.length > 0; round++) {
    const shares = evenShares(k - out.length, live.length);
    const asked = live.map((from, i) => ({ from, share: shares[i] })).filter((a) => a.share > 0);
    // The sources sample side by side (each served version has its own worker); answers are taken in turn order.
    const results = await Promise.allSettled(asked.map((a) => a.from.source.generate(prompt, a.share)));
    const failed = new Set<NamedSource>();
    const extra: Candidate[] = [];
    results.forEach((r, i) => {
      const { from, share } = asked[i];
      if (r.status === 'rejected') {
        failures.push(`${from.name}: ${(r.reason as Error)?.message ?? r.reason}`);
        failed.add(from);
        return;
      }
      let taken = 0;
      for (const text of r.value) {
        const key = text.trim();
        if (key === '' || seen.has(key)) continue;
        seen.add(key);
        (taken++ < share && out.length < k ? out : extra).push({ text, model: from.name });
      }
    });
    // A source that gave more than its share fills the places the others left empty.
    out.push(...extra.slice(0, k - out.length));
    live = live.filter((s) => !failed.has(s));
  }
  if (out.length < 2) {
    const why = failures.length > 0 ? ` (${failures.join('; ')})` : '';
    throw new Error(
      `only ${out.length} distinct non-empty candidate(s) after ${retries} resamples${why}; a ranking needs 2`,
    );
  }
  return out;
}
