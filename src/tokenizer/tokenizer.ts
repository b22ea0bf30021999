// Hugging Face `tokenizer.json` (byte-level BPE) loading, encoding and saving, on top of @huggingface/tokenizers.
//
// The file is validated here first, so that a bad file fails with a message naming the file and the field, before
// any object is built; @huggingface/tokenizers then does the encoding. We keep the parsed JSON so that `save`
// writes back what was loaded (GPT-2, Llama 3, SmolLM, Qwen2 files, or our own from trainBpe).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { type ChatMessage, ChatTemplate, type ChatTemplateOptions } from './chat.js';
import { show, TokenizerFileError } from './errors.js';

/** tokenizer.json as far as we read it; other fields are kept as they are. */
export interface TokenizerJson {
  model: { type?: string; vocab: Record<string, number>; merges: (string | [string, string])[]; [k: string]: unknown };
  added_tokens: AddedTokenJson[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  [k: string]: unknown;
}

export interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
}

/** tokenizer_config.json: the fields we read; everything else is kept for `save`. */
export interface TokenizerConfigJson {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  unk_token?: string | { content: string } | null;
  chat_template?: string | { name: string; template: string }[];
  clean_up_tokenization_spaces?: boolean;
  [k: string]: unknown;
}

export interface EncodeOptions {
  /** Let the post-processor add BOS/EOS (Llama 3 adds `<|begin_of_text|>`; GPT-2 adds nothing). Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (e.g. `<|endoftext|>`) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const;
type SpecialKey = (typeof SPECIAL_KEYS)[number];

/** Used only when tokenizer_config.json does not mention the token at all (e.g. GPT-2 ships without one). */
const FALLBACK: Record<SpecialKey, string[]> = {
  bos_token: ['<|begin_of_text|>', '<|endoftext|>', '<s>'],
  eos_token: ['<|end_of_text|>', '<|endoftext|>', '</s>'],
  pad_token: [],
  unk_token: [],
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** Whether a pre-tokenizer / decoder config is (or is a Sequence containing) a ByteLevel one. */
function hasByteLevel(node: unknown, listKey: string): boolean {
  if (!isObject(node)) return false;
  if (node.type === 'ByteLevel') return true;
  const list = node[listKey];
  return node.type === 'Sequence' && Array.isArray(list) && list.some((n) => hasByteLevel(n, listKey));
}

/** Checks everything we and @huggingface/tokenizers rely on; returns a normalized copy of the top level. */
function validateTokenizerJson(obj: unknown, file: string): TokenizerJson {
  const fail = (field: string | null, detail: string): never => {
    throw new TokenizerFileError(file, field, detail);
  };
  if (!isObject(obj)) return fail(null, `must hold a JSON object, not ${show(obj)}`);
  const model = obj.model;
  if (!isObject(model)) return fail('model', `is ${show(model)}; expected an object`);
  const type = model.type ?? (model.merges !== undefined ? 'BPE' : undefined);
  if (type !== 'BPE') return fail('model.type', `is ${show(model.type)}; only byte-level BPE is supported`);
  if (!isObject(model.vocab)) return fail('model.vocab', `is ${show(model.vocab)}; expected an object token -> id`);
  for (const [token, id] of Object.entries(model.vocab))
    if (!isId(id)) fail('model.vocab', `maps ${show(token)} to ${show(id)}; expected a non-negative integer`);
  if (!Array.isArray(model.merges)) return fail('model.merges', `is ${show(model.merges)}; expected an array`);
  model.merges.forEach((m, i) => {
    const ok =
      (typeof m === 'string' && m.split(' ').length === 2) ||
      (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string');
    if (!ok) fail(`model.merges[${i}]`, `is ${show(m)}; expected "a b" or ["a", "b"]`);
  });
  if (model.byte_fallback === true) fail('model.byte_fallback', 'is true; only byte-level BPE is supported');
  if (!hasByteLevel(obj.pre_tokenizer, 'pretokenizers'))
    fail(
      'pre_tokenizer',
      `is ${show(obj.pre_tokenizer)}; only byte-level BPE (a ByteLevel pre-tokenizer) is supported`,
    );
  if (!hasByteLevel(obj.decoder, 'decoders'))
    fail('decoder', `is ${show(obj.decoder)}; only byte-level BPE (a ByteLevel decoder) is supported`);
  const added = obj.added_tokens ?? [];
  if (!Array.isArray(added)) return fail('added_tokens', `is ${show(added)}; expected an array`);
  added.forEach((t, i) => {
    if (!isObject(t) || !isId(t.id) || typeof t.content !== 'string' || t.content === '')
      fail(`added_tokens[${i}]`, `is ${show(t)}; expected {"id": integer, "content": non-empty string, ...}`);
  });
  for (const key of ['normalizer', 'post_processor'])
    if (obj[key] !== undefined && obj[key] !== null && !isObject(obj[key]))
      fail(key, `is ${show(obj[key])}; expected an object or null`);
  return {
    ...obj,
    model: model as TokenizerJson['model'],
    added_tokens: added as AddedTokenJson[],
    normalizer: obj.normalizer ?? null,
    pre_tokenizer: obj.pre_tokenizer,
    post_processor: obj.post_processor ?? null,
    decoder: obj.decoder,
  };
}

function tokenContent(v: unknown): string | null | undefined {
  if (v === undefined || v === null || typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

function validateConfig(obj: unknown, file: string): TokenizerConfigJson {
  if (!isObject(obj)) throw new TokenizerFileError(file, null, `must hold a JSON object, not ${show(obj)}`);
  for (const key of SPECIAL_KEYS) {
    const v = obj[key];
    if (v !== undefined && v !== null && tokenContent(v) === undefined)
      throw new TokenizerFileError(file, key, `is ${show(v)}; expected a string, {"content": string} or null`);
  }
  const ct = obj.chat_template;
  if (ct !== undefined && ct !== null && typeof ct !== 'string') {
    const ok =
      Array.isArray(ct) && ct.every((t) => isObject(t) && typeof t.name === 'string' && typeof t.template === 'string');
    if (!ok)
      throw new TokenizerFileError(file, 'chat_template', `is ${show(ct)}; expected a string or [{name, template}]`);
  }
  if (obj.clean_up_tokenization_spaces !== undefined && typeof obj.clean_up_tokenization_spaces !== 'boolean')
    throw new TokenizerFileError(file, 'clean_up_tokenization_spaces', `is ${show(obj.clean_up_tokenization_spaces)}`);
  return obj as TokenizerConfigJson;
}

function readJson(path: string, label: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokenizerFileError(label, null, `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerFileError(label, null, `is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * tokenizer.json text: 2-space JSON like the Hugging Face library writes, with `model.vocab` in id order
 * (a JS object would put integer-like keys such as "2024" first). Same object -> same bytes.
 */
export function stringifyTokenizerJson(json: TokenizerJson): string {
  const mark = '\u0000vocab\u0000';
  const text = JSON.stringify({ ...json, model: { ...json.model, vocab: mark } }, null, 2);
  const entries = Object.entries(json.model.vocab).sort((a, b) => a[1] - b[1]);
  const vocab =
    entries.length === 0
      ? '{}'
      : `{\n${entries.map(([k, v]) => `      ${JSON.stringify(k)}: ${v}`).join(',\n')}\n    }`;
  return `${text.replace(JSON.stringify(mark), () => vocab)}\n`;
}

/** A byte-level BPE tokenizer read from (or written as) Hugging Face `tokenizer.json` + `tokenizer_config.json`. */
export class Tokenizer {
  /** The validated tokenizer.json object (written back by `save`). */
  readonly json: TokenizerJson;
  /** tokenizer_config.json, or null when there was none. */
  readonly config: TokenizerConfigJson | null;
  /** Number of ids: one past the largest id of the vocabulary and the added tokens. */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly unkId: number | null;
  /** The chat template from tokenizer_config.json (or chat_template.jinja), if any. */
  readonly chatTemplate: ChatTemplate | null;
  readonly #hf: HfTokenizer;
  readonly #specialIds: Set<number>;
  readonly #idToToken: Map<number, string>;
  readonly #tokenToId: Map<string, number>;
  readonly #cleanUp: boolean;
  readonly #files: { tokenizer: string; config: string };

  private constructor(
    json: TokenizerJson,
    config: TokenizerConfigJson | null,
    files: { tokenizer: string; config: string },
    template: ChatTemplate | null,
  ) {
    this.json = json;
    this.config = config;
    this.#files = files;
    const toId = new Map<string, number>();
    const toToken = new Map<number, string>();
    for (const [token, id] of Object.entries(json.model.vocab)) {
      toId.set(token, id);
      toToken.set(id, token);
    }
    for (const t of json.added_tokens) {
      toId.set(t.content, t.id);
      toToken.set(t.id, t.content);
    }
    this.#tokenToId = toId;
    this.#idToToken = toToken;
    let size = 0; // a loop: Math.max(...ids) overflows the stack for 150k-token vocabularies (Qwen2)
    for (const id of toToken.keys()) size = Math.max(size, id + 1);
    this.vocabSize = size;
    this.#specialIds = new Set(json.added_tokens.filter((t) => t.special).map((t) => t.id));

    const ids = {} as Record<SpecialKey, number | null>;
    for (const key of SPECIAL_KEYS) {
      const named = config && key in config ? tokenContent(config[key]) : undefined;
      let id: number | null = null;
      if (typeof named === 'string') {
        const found = toId.get(named);
        if (found === undefined)
          throw new TokenizerFileError(files.config, key, `is ${show(named)}, which is not in the vocabulary`);
        id = found;
      } else if (named === undefined) {
        const hit = FALLBACK[key].find((t) => toId.has(t));
        id = hit === undefined ? null : toId.get(hit)!;
      }
      ids[key] = id;
    }
    this.bosId = ids.bos_token;
    this.eosId = ids.eos_token;
    this.padId = ids.pad_token;
    this.unkId = ids.unk_token;
    this.#cleanUp = config?.clean_up_tokenization_spaces ?? false;
    this.chatTemplate = template;
    try {
      this.#hf = new HfTokenizer(json, { ...config, clean_up_tokenization_spaces: this.#cleanUp });
    } catch (e) {
      throw new TokenizerFileError(files.tokenizer, null, `cannot be loaded: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Reads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json` (and `dir/chat_template.jinja`,
   * which newer transformers versions write instead of the config's `chat_template`).
   */
  static fromDir(dir: string): Tokenizer {
    const tokFile = join(dir, 'tokenizer.json');
    const cfgFile = join(dir, 'tokenizer_config.json');
    if (!existsSync(tokFile))
      throw new TokenizerFileError(
        tokFile,
        null,
        'file not found: a model folder needs its tokenizer (copy tokenizer.json and tokenizer_config.json from where the model came from)',
      );
    const json = readJson(tokFile, tokFile);
    let config: unknown = null;
    try {
      config = readJson(cfgFile, cfgFile);
    } catch (e) {
      if ((e as { cause?: { code?: string } }).cause?.code !== 'ENOENT') throw e;
    }
    let templateOverride: { text: string; file: string } | null = null;
    const jinjaFile = join(dir, 'chat_template.jinja');
    try {
      templateOverride = { text: readFileSync(jinjaFile, 'utf8'), file: jinjaFile };
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    }
    return Tokenizer.#build(json, config, { tokenizer: tokFile, config: cfgFile }, templateOverride);
  }

  /**
   * Builds a tokenizer from parsed tokenizer.json (and tokenizer_config.json) objects. `source` names the
   * tokenizer.json file in error messages; the config is named after the file beside it.
   */
  static fromJSON(obj: unknown, config?: unknown, source = 'tokenizer.json'): Tokenizer {
    const cfgFile = join(dirname(source), 'tokenizer_config.json');
    return Tokenizer.#build(obj, config ?? null, { tokenizer: source, config: cfgFile }, null);
  }

  static #build(
    obj: unknown,
    config: unknown,
    files: { tokenizer: string; config: string },
    templateOverride: { text: string; file: string } | null,
  ): Tokenizer {
    const json = validateTokenizerJson(obj, files.tokenizer);
    const cfg = config === null ? null : validateConfig(config, files.config);
    let template: ChatTemplate | null = null;
    if (templateOverride) template = new ChatTemplate(templateOverride.text, templateOverride.file, null);
    else if (typeof cfg?.chat_template === 'string') template = new ChatTemplate(cfg.chat_template, files.config);
    else if (Array.isArray(cfg?.chat_template)) {
      const list = cfg.chat_template;
      const i = Math.max(
        0,
        list.findIndex((t) => t.name === 'default'),
      );
      if (list.length > 0) template = new ChatTemplate(list[i].template, files.config, `chat_template[${i}].template`);
    }
    return new Tokenizer(json, cfg, files, template);
  }

  /** Token ids of `text`. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`encode: text must be a string, not ${typeof text}`);
    return this.#hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** Text of `ids`; throws a RangeError on an id that is not in the vocabulary. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    for (const id of ids)
      if (!this.#idToToken.has(id))
        throw new RangeError(`decode: ${id} is not a token id (vocabSize ${this.vocabSize})`);
    const kept = options.skipSpecialTokens ? ids.filter((id) => !this.#specialIds.has(id)) : ids;
    if (kept.length === 0) return '';
    return this.#hf.decode(kept as number[], {
      skip_special_tokens: false,
      clean_up_tokenization_spaces: this.#cleanUp,
    });
  }

  tokenToId(token: string): number | null {
    return this.#tokenToId.get(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.#idToToken.get(id) ?? null;
  }

  /** Whether `id` is an added token marked special (`<|endoftext|>`, chat markers, ...). */
  isSpecial(id: number): boolean {
    return this.#specialIds.has(id);
  }

  /** The text form of the special tokens named in tokenizer_config.json (`bos_token`, ...), for templates. */
  specialTokens(): Record<SpecialKey, string | null> {
    const out = {} as Record<SpecialKey, string | null>;
    const ids: Record<SpecialKey, number | null> = {
      bos_token: this.bosId,
      eos_token: this.eosId,
      pad_token: this.padId,
      unk_token: this.unkId,
    };
    for (const key of SPECIAL_KEYS) out[key] = ids[key] === null ? null : this.idToToken(ids[key]!);
    return out;
  }

  /**
   * Renders `messages` with the chat template (as transformers' `apply_chat_template(..., tokenize=False)`).
   * Throws a TokenizerFileError naming tokenizer_config.json when there is no template, on an unknown role,
   * or when the template fails. Encode the result with `{ addSpecialTokens: false }` if the template already
   * writes the BOS token (Llama 3 does).
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === null)
      throw new TokenizerFileError(
        this.#files.config,
        'chat_template',
        'is missing; this tokenizer has no chat template',
      );
    return this.chatTemplate.render(messages, options, this.specialTokens());
  }

  /** Writes `dir/tokenizer.json` and, if there is a config, `dir/tokenizer_config.json`. */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tokenizer.json'), stringifyTokenizerJson(this.json));
    if (this.config !== null)
      writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify(this.config, null, 2)}\n`);
    if (this.chatTemplate !== null && this.config?.chat_template === undefined)
      writeFileSync(join(dir, 'chat_template.jinja'), this.chatTemplate.source);
  }
}
