// Training a GPT-2-style byte-level BPE tokenizer from a corpus.
//
// 1. Pre-tokenize every text with the GPT-2 regex (special tokens are cut out first) and count the pieces:
//    the word frequency table. A few MB of text give some 10^5 distinct words.
// 2. Every word starts as its UTF-8 bytes. Count adjacent symbol pairs over all words (weighted by frequency)
//    and remember, per pair, which words hold it.
// 3. Repeatedly merge the most frequent pair (ties: the smaller (left id, right id)) into a new symbol. Only the
//    words that hold the pair are rewritten, and only their pair counts change: the cost of a merge is the size
//    of those words, not of the corpus. A max-heap with lazy deletion finds the best pair: a merge can only
//    lower the counts of existing pairs, so a popped entry whose count is stale is pushed back with the current
//    count; pairs with the new symbol are pushed once, after the merge, with their full counts.
//
// Ids: the special tokens first (0..k-1, as the Hugging Face trainer does), then the 256 bytes in byte order,
// then one id per merge. Nothing depends on Map iteration order of the corpus, so the same texts (in any
// order) give the same tokenizer.json, byte for byte.

import { BYTE_TO_CHAR, GPT2_PATTERN } from './bytes.js';
import { CHAT_TOKENS, DEFAULT_CHAT_TEMPLATE } from './chat.js';
import { stringifyTokenizerJson, Tokenizer, type TokenizerConfigJson, type TokenizerJson } from './tokenizer.js';

export interface TrainBpeOptions {
  /** Size of the final vocabulary: special tokens + 256 bytes + merges. Training stops early if pairs run out. */
  vocabSize: number;
  /** Added as special tokens with the first ids. Default `['<|endoftext|>']`. */
  specialTokens?: string[];
  /** A pair must occur at least this often (over the corpus) to be merged. Default 2. */
  minFrequency?: number;
  /** Also register the default chat template's markers (`<|user|>`, ...) and write the template. Default false. */
  chatTokens?: boolean;
  /** A chat template of your own for tokenizer_config.json (default: DEFAULT_CHAT_TEMPLATE when chatTokens). */
  chatTemplate?: string;
  /** tokenizer_config.json special tokens; each defaults to the first special token. Added to the specials. */
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  /** tokenizer_config.json `model_max_length`, when known. */
  modelMaxLength?: number;
}

const PAIR = 0x200000; // pair key = left * PAIR + right; ids stay below 2^21

interface Entry {
  count: number;
  key: number;
}

/** Binary max-heap on (count, then smaller pair key). */
class PairHeap {
  readonly #a: Entry[] = [];

  get size(): number {
    return this.#a.length;
  }

  static #above(x: Entry, y: Entry): boolean {
    return x.count > y.count || (x.count === y.count && x.key < y.key);
  }

  push(e: Entry): void {
    const a = this.#a;
    let i = a.push(e) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!PairHeap.#above(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): Entry | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && PairHeap.#above(a[l], a[m])) m = l;
        if (r < a.length && PairHeap.#above(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Word frequency table of the corpus: GPT-2 pre-tokens, with special tokens cut out of the text. */
function countWords(texts: Iterable<string>, specials: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  const cut =
    specials.length === 0
      ? null
      : new RegExp(
          [...specials]
            .sort((a, b) => b.length - a.length)
            .map(escapeRegExp)
            .join('|'),
          'u',
        );
  for (const text of texts) {
    if (typeof text !== 'string') throw new TypeError(`trainBpe: texts must be strings, got ${typeof text}`);
    for (const part of cut === null ? [text] : text.split(cut))
      for (const m of part.matchAll(GPT2_PATTERN)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  }
  return counts;
}

/**
 * Trains a GPT-2-style byte-level BPE tokenizer on `texts` (iterated once). The result saves as Hugging Face
 * tokenizer.json + tokenizer_config.json (`tokenizer.save(dir)`); `tokenizer.json` holds exactly those objects.
 */
export function trainBpe(texts: Iterable<string>, options: TrainBpeOptions): Tokenizer {
  const { vocabSize, minFrequency = 2, chatTokens = false } = options;
  const specials: string[] = [];
  for (const t of [
    ...(options.specialTokens ?? ['<|endoftext|>']),
    ...(chatTokens ? Object.values(CHAT_TOKENS) : []),
    ...[options.bosToken, options.eosToken, options.padToken].filter((t) => t !== undefined),
  ]) {
    if (typeof t !== 'string' || t === '') throw new TypeError(`trainBpe: special token ${JSON.stringify(t)}`);
    if (!specials.includes(t)) specials.push(t);
  }
  const base = specials.length + 256;
  if (!Number.isInteger(vocabSize) || vocabSize < base || vocabSize >= PAIR)
    throw new RangeError(`trainBpe: vocabSize ${vocabSize} must be an integer in [${base}, ${PAIR})`);
  if (!Number.isInteger(minFrequency) || minFrequency < 1)
    throw new RangeError(`trainBpe: minFrequency ${minFrequency} must be a positive integer`);

  // Symbols: id -> byte-level string.
  const symbols: string[] = [...specials, ...BYTE_TO_CHAR];
  const specialSet = new Set(specials);
  const merges: string[] = [];

  // Distinct words as symbol arrays, with frequencies.
  const counts = countWords(texts, specials);
  const words: Int32Array[] = [];
  const freq: number[] = [];
  const utf8 = new TextEncoder();
  for (const [word, n] of counts) {
    const bytes = utf8.encode(word);
    const w = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) w[i] = specials.length + bytes[i];
    words.push(w);
    freq.push(n);
  }
  counts.clear();

  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const add = (key: number, n: number, word: number) => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + n);
    let set = where.get(key);
    if (set === undefined) where.set(key, (set = new Set()));
    set.add(word);
  };
  for (let w = 0; w < words.length; w++) {
    const s = words[w];
    for (let i = 0; i + 1 < s.length; i++) add(s[i] * PAIR + s[i + 1], freq[w], w);
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push({ count, key });

  while (symbols.length < vocabSize && heap.size > 0) {
    const top = heap.pop()!;
    const current = pairCount.get(top.key) ?? 0;
    if (current !== top.count) {
      if (current > 0) heap.push({ count: current, key: top.key });
      continue;
    }
    if (current < minFrequency) break;
    const left = Math.floor(top.key / PAIR);
    const right = top.key % PAIR;
    if (specialSet.has(symbols[left] + symbols[right])) {
      // The merge would spell a special token (possible only for one made of letters or digits): never merge
      // it, so that every token string has one id. The pair is not pushed again (it holds no new symbol).
      pairCount.set(top.key, 0);
      continue;
    }
    const id = symbols.length;
    symbols.push(symbols[left] + symbols[right]);
    merges.push(`${symbols[left]} ${symbols[right]}`);

    const fresh = new Set<number>(); // pairs with the new symbol, pushed once their counts are complete
    for (const w of where.get(top.key) ?? []) {
      const s = words[w];
      let hits = 0;
      for (let i = 0; i + 1 < s.length; i++)
        if (s[i] === left && s[i + 1] === right) {
          hits++;
          i++;
        }
      if (hits === 0) continue; // the pair left this word in an earlier merge
      const n = freq[w];
      for (let i = 0; i + 1 < s.length; i++) {
        const key = s[i] * PAIR + s[i + 1];
        pairCount.set(key, pairCount.get(key)! - n);
      }
      const t = new Int32Array(s.length - hits);
      for (let i = 0, j = 0; i < s.length; i++, j++) {
        if (i + 1 < s.length && s[i] === left && s[i + 1] === right) {
          t[j] = id;
          i++;
        } else t[j] = s[i];
      }
      for (let j = 0; j + 1 < t.length; j++) {
        const key = t[j] * PAIR + t[j + 1];
        add(key, n, w);
        if (t[j] === id || t[j + 1] === id) fresh.add(key);
      }
      words[w] = t;
    }
    pairCount.delete(top.key);
    where.delete(top.key);
    for (const key of fresh) heap.push({ count: pairCount.get(key)!, key });
  }

  const json: TokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(symbols.map((s, i) => [s, i])),
      merges,
    },
  };
  const first = specials[0] ?? null;
  const config: TokenizerConfigJson = {
    add_bos_token: false,
    add_eos_token: false,
    added_tokens_decoder: Object.fromEntries(
      json.added_tokens.map((t) => [
        String(t.id),
        { content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
    bos_token: options.bosToken ?? first,
    ...(options.chatTemplate !== undefined || chatTokens
      ? { chat_template: options.chatTemplate ?? DEFAULT_CHAT_TEMPLATE }
      : {}),
    clean_up_tokenization_spaces: false,
    eos_token: options.eosToken ?? first,
    ...(options.modelMaxLength !== undefined ? { model_max_length: options.modelMaxLength } : {}),
    pad_token: options.padToken ?? first,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  // Round-trip through the saved text, so that the object we hold is exactly what `save` writes and reads back
  // (and a token such as "__proto__" is an own key, as JSON.parse makes it).
  return Tokenizer.fromJSON(JSON.parse(stringifyTokenizerJson(json)), config, 'tokenizer.json (trainBpe)');
}
