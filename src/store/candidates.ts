/** Where ranking / A/B candidates come from. Model sampling plugs in later as another CandidateSource. */
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

  async generate(prompt: string, k: number): Promise<string[]> {
    const pool = await this.store.prompts.pooledCandidates(prompt, this.model);
    if (pool.length < k) {
      throw new Error(`only ${pool.length} imported "${this.model}" candidates for prompt, need ${k}`);
    }
    return pool.slice(0, k);
  }
}
