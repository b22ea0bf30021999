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

/**
 * Up to k distinct, non-blank candidates for a prompt. What repeats (compared without surrounding whitespace) or
 * says nothing is dropped and the source is asked again for the missing ones, up to `retries` times; a source that
 * keeps repeating itself yields fewer (K shrinks). Fewer than two distinct answers make no ranking: that rejects.
 */
export async function distinctCandidates(
  source: CandidateSource,
  prompt: string,
  k: number,
  retries = 3,
): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const take = (texts: string[]) => {
    for (const t of texts) {
      const key = t.trim();
      if (key === '' || seen.has(key) || out.length >= k) continue;
      seen.add(key);
      out.push(t);
    }
  };
  take(await source.generate(prompt, k));
  for (let i = 0; i < retries && out.length < k; i++) take(await source.generate(prompt, k - out.length));
  if (out.length < 2) {
    throw new Error(`only ${out.length} distinct non-empty candidate(s) after ${retries} resamples; a ranking needs 2`);
  }
  return out;
}
