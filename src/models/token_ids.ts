// The special-token ids a Hugging Face config.json carries. We do not use them ourselves, but a checkpoint must keep
// them: transformers' generate() stops on eos_token_id, and its defaults (50256 for GPT-2) are wrong for other
// tokenizers.
export interface TokenIds {
  bos_token_id?: number | number[] | null;
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | number[] | null;
}

const KEYS = ['bos_token_id', 'eos_token_id', 'pad_token_id'] as const;

const isId = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;

/** The token-id fields of a config.json object (an id, a list of ids, or null), checked. */
export function tokenIdsFromHF(json: Record<string, unknown>, source: string): TokenIds {
  const ids: TokenIds = {};
  for (const key of KEYS) {
    const v = json[key];
    if (v === undefined) continue;
    if (v !== null && !isId(v) && !(Array.isArray(v) && v.every(isId)))
      throw new Error(`${source}: field "${key}" must be a token id, a list of ids or null, got ${JSON.stringify(v)}`);
    ids[key] = v as TokenIds[typeof key];
  }
  return ids;
}

/** Token ids for a model trained with our own tokenizer. */
export function tokenIdsOf(tokenizer: { bosId: number | null; eosId: number | null; padId: number | null }): TokenIds {
  return { bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId };
}
