// Inputs shared by the SFT and reward-model trainers: model folders checked for their kind, JSONL files read with
// file:line errors, prompts rendered with the chat template and tokenized, right-padded batches.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CausalLM,
  checkModelFolder,
  GPT2,
  Llama,
  loadModelFolder,
  modelFolder,
  type PaddedBatch,
  padRight,
  type ScalarModel,
  tokenizerFolder,
} from '../models/index.js';
import { type SaveTrainedOptions, saveTrained } from '../models/lora.js';
import {
  type ChatTurn,
  type DemonstrationRecord,
  formatLineError,
  type LineError,
  parseJsonl,
  type RankingRecord,
} from '../store/jsonl.js';
import type { RankingOrder } from '../store/ranking.js';
import { Rng, Tensor } from '../tensor/index.js';
import { type Formatter, type PromptFormat, resolvePromptFormat, Tokenizer } from '../tokenizer/index.js';
import type { RunControls } from '../train/loop.js';
import { decodeUtf8 } from '../train/utf8.js';

// ---- model folders ----

export interface LoadedModel<M> {
  model: M;
  tokenizer: Tokenizer;
  /** The generator behind the model's dropout masks: its state is part of an exact-resume checkpoint. */
  dropoutRng: Rng;
  /** A note when the asked-for dropout does not apply (Llama-family models have none). */
  note: string | null;
}

/**
 * Loads a causal LM folder and its tokenizer. The model is rebuilt around a generator of our own so that its
 * dropout draws can be checkpointed; `residPdrop` overrides a GPT-2 folder's residual dropout.
 */
export function loadCausalLM(
  dir: string,
  opts: { residPdrop?: number | null; seed?: number; base?: string } = {},
): LoadedModel<CausalLM> {
  checkModelFolder(dir, 'causal', opts.base);
  const tokDir = tokenizerFolder(dir, opts.base);
  const tokenizer = Tokenizer.fromDir(tokDir);
  const rng = new Rng(opts.seed ?? 0);
  const loaded = loadModelFolder(dir, { base: opts.base });
  if (tokenizer.vocabSize > loaded.config.vocabSize)
    throw new Error(
      `${join(tokDir, 'tokenizer.json')}: ${tokenizer.vocabSize} token ids, but field "vocab_size" of ` +
        `${join(modelFolder(dir, opts.base).configDir, 'config.json')} is ${loaded.config.vocabSize}`,
    );
  const p = opts.residPdrop ?? null;
  const model =
    loaded instanceof GPT2
      ? new GPT2({ ...loaded.config, residPdrop: p ?? loaded.config.residPdrop }, rng)
      : new Llama(loaded.config, rng);
  model.loadStateDict(loaded.stateDict());
  for (const t of loaded.parameters()) t.dispose();
  const note =
    p && model instanceof Llama ? `${dir}: a Llama-family model has no dropout; dropout ${p} is ignored` : null;
  return { model, tokenizer, dropoutRng: rng, note };
}

/** Writes a trained model (a full folder, or with LoRA its adapter and, with merge, merged/) with its tokenizer. */
export function saveOutput(
  model: CausalLM | ScalarModel,
  tokenizer: Tokenizer,
  dir: string,
  opts: SaveTrainedOptions,
): void {
  const full = saveTrained(model, dir, opts);
  tokenizer.save(dir);
  if (full && full !== dir) tokenizer.save(full);
}

/**
 * The prompt format a run starting from dir (a causal LM folder, or an adapter folder on one) uses: --prompt-format,
 * or with auto what SFT recorded there, else the tokenizer's chat template. Checks the folder first.
 */
export function startingPromptFormat(dir: string, base: string | undefined, requested: PromptFormat): 'chat' | 'raw' {
  checkModelFolder(dir, 'causal', base);
  return resolvePromptFormat(dir, Tokenizer.fromDir(tokenizerFolder(dir, base)), requested);
}

// ---- JSONL files ----

/** Bad lines of an input file, all reported at once (the first few printed), before any compute. */
export class DataError extends Error {
  constructor(readonly errors: LineError[]) {
    const shown = errors.slice(0, 10).map(formatLineError);
    if (errors.length > 10) shown.push(`... and ${errors.length - 10} more`);
    super(shown.join('\n'));
    this.name = 'DataError';
  }
}

/** What every trainer of this layer is given besides its own config. */
export interface TrainerRun extends RunControls {
  /** The model folder training starts from (or a PEFT adapter folder: its base with the adapter merged in). */
  modelDir: string;
  /** The base of an adapter folder given as modelDir (default: its adapter_config.json's base_model_name_or_path). */
  base?: string;
  dataFile: string;
  outDir: string;
  /** Held-out data; without it, the config's valFraction of the data is held out. */
  valFile?: string;
  skipBad?: boolean;
}

export interface ReadOptions {
  /** Skip bad lines (counted in `skipped`) instead of failing. */
  skipBad?: boolean;
}

/** Where a record came from, for errors found after parsing (e.g. too long for the model). */
export interface Located {
  file: string;
  line: number;
}

const TEXT_LIMIT = 1_000_000;

function readText(file: string): string {
  if (!existsSync(file)) throw new Error(`${file}: file not found`);
  return decodeUtf8(readFileSync(file), file);
}

// parseJsonl numbers lines of the text it is given; records are matched to lines by parsing one line at a time.
function parseLines<T>(
  file: string,
  parse: (line: string) => { records: T[]; errors: LineError[] },
): { records: (T & Located)[]; errors: LineError[] } {
  const records: (T & Located)[] = [];
  const errors: LineError[] = [];
  readText(file)
    .split('\n')
    .forEach((raw, i) => {
      if (raw.trim() === '') return;
      const r = parse(raw);
      for (const e of r.errors) errors.push({ file, line: i + 1, message: e.message });
      for (const rec of r.records) records.push({ ...rec, file, line: i + 1 });
    });
  return { records, errors };
}

function finish<T>(file: string, parsed: { records: T[]; errors: LineError[] }, opts: ReadOptions): Read<T> {
  if (parsed.errors.length > 0 && !opts.skipBad) throw new DataError(parsed.errors);
  if (parsed.records.length === 0) throw new Error(`${file}: no usable records (empty dataset)`);
  return { records: parsed.records, skipped: parsed.errors };
}

export interface Read<T> {
  records: T[];
  /** Lines skipped with skipBad. */
  skipped: LineError[];
}

export type Demonstration = DemonstrationRecord & Located;

/** Demonstrations: `{"prompt","completion"}` or chat `{"messages": [...]}` lines. */
export function readDemonstrations(file: string, opts: ReadOptions = {}): Read<Demonstration> {
  const parsed = parseLines(file, (line) =>
    parseJsonl('demonstrations', line, { maxTextChars: TEXT_LIMIT, multiTurn: true }, file),
  );
  return finish(file, parsed, opts);
}

/** Prompts with where each came from (file:line), for errors. */
export interface PromptSet {
  texts: string[];
  where: string[];
}

/** Prompts: `{"prompt"}` lines (text or a one-message list); every bad line is reported as file:line. */
export function readPrompts(file: string, opts: ReadOptions = {}): PromptSet {
  const parsed = parseLines(file, (line) => parseJsonl('prompts', line, { maxTextChars: TEXT_LIMIT }, file));
  if (parsed.records.length === 0 && parsed.errors.length === 0) throw new Error(`${file}: no prompts`);
  const { records } = finish(file, parsed, opts);
  return { texts: records.map((r) => r.prompt), where: records.map((r) => `${r.file}:${r.line}`) };
}

/** Each prompt's ids in the formatter's format; one too long to leave maxNewTokens in the context names its line. */
export function encodePrompts(prompts: PromptSet, fmt: Formatter, context: number, maxNewTokens: number): number[][] {
  if (prompts.texts.length === 0) throw new Error('no prompts');
  return prompts.texts.map((text, i) => {
    const ids = fmt.prompt(text);
    if (ids.length + maxNewTokens > context)
      throw new Error(
        `${prompts.where[i]}: prompt of ${ids.length} tokens + maxNewTokens ${maxNewTokens} exceeds the context of ${context}`,
      );
    return ids;
  });
}

/** Prompts given in code (tests, the demo). */
export function inlinePrompts(texts: string[]): PromptSet {
  return { texts, where: texts.map((_, i) => `prompt ${i}`) };
}

export type ComparisonFormat = 'auto' | 'rankings' | 'pairwise';
export type Ranking = RankingRecord & Located;

/**
 * Rankings `{"prompt","responses":[K],"ranking":[best→worst],"labeler"?}` and pairwise lines (a pair becomes K = 2
 * with the chosen response first) in TRL's forms: `{"prompt","chosen","rejected"}` texts, an implicit prompt
 * (`{"chosen","rejected"}` texts sharing their beginning, as Anthropic's HH-RLHF), or conversational message lists
 * (with or without a separate "prompt"); `auto` decides per line.
 */
export function readComparisons(
  file: string,
  format: ComparisonFormat = 'auto',
  opts: ReadOptions = {},
): Read<Ranking> {
  const vopts = { maxTextChars: TEXT_LIMIT, minK: 2, maxK: 9, multiTurn: true };
  const parsed = parseLines(file, (line): { records: RankingRecord[]; errors: LineError[] } => {
    if (kindOf(line, format) === 'rankings') return parseJsonl('rankings', line, vopts, file);
    const r = parseJsonl('pairwise', line, vopts, file);
    return {
      errors: r.errors,
      records: r.records.map((p) => ({
        prompt: p.prompt,
        ...(p.context ? { context: p.context } : {}),
        responses: [p.chosen, p.rejected],
        ranking: [0, 1],
      })),
    };
  });
  return finish(file, parsed, opts);
}

function kindOf(line: string, format: ComparisonFormat): 'rankings' | 'pairwise' {
  if (format !== 'auto') return format;
  try {
    const o = JSON.parse(line);
    return o && typeof o === 'object' && ('chosen' in o || 'rejected' in o) ? 'pairwise' : 'rankings';
  } catch {
    return 'rankings'; // its validator reports the JSON error
  }
}

// ---- tokenized examples ----

/** A demonstration as ids: the first promptLength tokens are the prompt, the rest the response and EOS. */
export interface SftExample extends Located {
  ids: number[];
  promptLength: number;
}

/** A ranking as ids: one full sequence (prompt + response + EOS) per response. */
export interface RankingExample extends Located {
  sequences: number[][];
  /** Tokens of the prompt, the same in every sequence. */
  promptLength: number;
  /** Best → worst; tied responses as an inner array (they make no pair). */
  ranking: RankingOrder;
  labeler?: string;
}

function tooLong(where: Located, what: string, n: number, context: number): LineError {
  return {
    file: where.file,
    line: where.line,
    message: `${what} is ${n} tokens, longer than the model context of ${context}`,
  };
}

// A record's prompt ids, or null with the reason added to errors (e.g. a multi-turn line without a chat template).
function promptIds(fmt: Formatter, r: { prompt: string; context?: ChatTurn[] } & Located, errors: LineError[]) {
  try {
    return fmt.prompt(r.prompt, r.context);
  } catch (e) {
    errors.push({ file: r.file, line: r.line, message: (e as Error).message });
    return null;
  }
}

/** Tokenizes demonstrations; a line too long for the context is an error (skipped with skipBad). */
export function encodeDemonstrations(
  demos: Demonstration[],
  fmt: Formatter,
  context: number,
  opts: ReadOptions = {},
): Read<SftExample> {
  const records: SftExample[] = [];
  const errors: LineError[] = [];
  for (const d of demos) {
    const prompt = promptIds(fmt, d, errors);
    if (!prompt) continue;
    const ids = [...prompt, ...fmt.response(d.completion)];
    if (ids.length > context) errors.push(tooLong(d, 'prompt + completion', ids.length, context));
    else records.push({ ids, promptLength: prompt.length, file: d.file, line: d.line });
  }
  return finish(demos[0]?.file ?? 'input', { records, errors }, opts);
}

/** Tokenizes rankings; any prompt + response too long for the context is an error (skipped with skipBad). */
export function encodeRankings(
  rankings: Ranking[],
  fmt: Formatter,
  context: number,
  opts: ReadOptions = {},
): Read<RankingExample> {
  const records: RankingExample[] = [];
  const errors: LineError[] = [];
  for (const r of rankings) {
    const prompt = promptIds(fmt, r, errors);
    if (!prompt) continue;
    const sequences = r.responses.map((text) => [...prompt, ...fmt.response(text)]);
    const worst = sequences.findIndex((s) => s.length > context);
    if (worst >= 0) errors.push(tooLong(r, `prompt + response ${worst}`, sequences[worst].length, context));
    else
      records.push({
        sequences,
        promptLength: prompt.length,
        ranking: r.ranking,
        labeler: r.labeler,
        file: r.file,
        line: r.line,
      });
  }
  return finish(rankings[0]?.file ?? 'input', { records, errors }, opts);
}

// ---- batches ----

/**
 * SFT batch: next-token targets only where the next token is a response token (the prompt and the padding get
 * ignoreIndex -100, so they add neither loss nor gradient).
 */
export function sftBatch(examples: SftExample[], padId: number): PaddedBatch & { targets: Tensor } {
  const batch = padRight(
    examples.map((e) => e.ids),
    padId,
  );
  const [B, T] = batch.ids.shape;
  const targets = Tensor.empty([B, T], 'i32');
  targets.i32.fill(-100);
  examples.forEach((e, b) => {
    for (let t = Math.max(0, e.promptLength - 1); t < e.ids.length - 1; t++) targets.i32[b * T + t] = e.ids[t + 1];
  });
  return { ...batch, targets };
}
