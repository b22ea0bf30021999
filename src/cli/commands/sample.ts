// instructkit sample: continues a prompt with a saved model, printing tokens as they are generated.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  generate,
  LOAD_DTYPES,
  type LoadDType,
  loadModelFolder,
  modelFolder,
  tokenizerFolder,
} from '../../models/index.js';
import { CHAT_TOKENS, Tokenizer, textStreamer } from '../../tokenizer/index.js';
import { numberFlag } from '../flags.js';

const HELP = `usage: instructkit sample --model DIR "prompt" [options]

Prints the model's continuation of the prompt as it is generated, up to --max-tokens or the end-of-text token.

  --model DIR          a Hugging Face model folder (config.json, model.safetensors, tokenizer.json), or a LoRA
                       run's adapter folder (its base with the adapter merged in)
  --base DIR           the base of an adapter folder (default: adapter_config.json's base_model_name_or_path)
  --max-tokens N       new tokens at most (default: 128, or what is left of the context)
  --temperature T      0 is greedy (default 1)
  --top-k K            sample among the K most likely tokens (default 0: all)
  --top-p P            sample among the most likely tokens reaching probability P (default 1: all)
  --seed S             random seed (default 0)
  --dtype D            weights in memory: auto (default: as the checkpoint stores them), f32 or bf16
  --chat               wrap the prompt as a user message in the tokenizer's chat template
  -h, --help           this text`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      base: { type: 'string' },
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      chat: { type: 'boolean' },
      dtype: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.model) throw new Error('--model DIR is required');
  if (positionals.length !== 1)
    throw new Error(
      positionals.length === 0 ? 'a prompt is required' : 'give exactly one prompt (quote it if it has spaces)',
    );
  const prompt = positionals[0];
  const int = (v: number) => Number.isInteger(v);
  const maxTokens =
    numberFlag(values['max-tokens'], '--max-tokens', (v) => int(v) && v >= 1, 'an integer >= 1') ?? null;
  const temperature = numberFlag(values.temperature, '--temperature', (v) => v >= 0, 'a number >= 0') ?? 1;
  const topK = numberFlag(values['top-k'], '--top-k', (v) => int(v) && v >= 0, 'an integer >= 0') ?? 0;
  const topP = numberFlag(values['top-p'], '--top-p', (v) => v > 0 && v <= 1, 'a number in (0, 1]') ?? 1;
  const seed =
    numberFlag(values.seed, '--seed', (v) => int(v) && v >= 0 && v < 2 ** 32, 'an integer in [0, 2^32)') ?? 0;

  const dtype = (values.dtype ?? 'auto') as LoadDType;
  if (!LOAD_DTYPES.includes(dtype))
    throw new Error(`--dtype: expected one of ${LOAD_DTYPES.join(', ')}, got ${JSON.stringify(values.dtype)}`);
  const dir = values.model;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: model folder not found`);
  const tokDir = tokenizerFolder(dir, values.base);
  const tokenizer = Tokenizer.fromDir(tokDir);
  const model = loadModelFolder(dir, { dtype, base: values.base });
  if (tokenizer.vocabSize > model.config.vocabSize)
    throw new Error(
      `${join(modelFolder(dir, values.base).configDir, 'config.json')}: field "vocab_size" is ${model.config.vocabSize}, but ${join(tokDir, 'tokenizer.json')} has ${tokenizer.vocabSize} ids`,
    );

  let ids: number[];
  if (values.chat) {
    const text = tokenizer.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true });
    // Templates that write the BOS token themselves must not get a second one.
    const bos = tokenizer.specialTokens().bos_token;
    ids = tokenizer.encode(text, { addSpecialTokens: !(bos && text.startsWith(bos)) });
  } else ids = tokenizer.encode(prompt);
  if (ids.length === 0) {
    // An empty prompt starts from the document separator, as GPT-2 does.
    const start = tokenizer.bosId ?? tokenizer.eosId;
    if (start === null) throw new Error('the prompt is empty and the tokenizer has no BOS or EOS token to start from');
    ids = [start];
  }
  const room = model.maxPositions - ids.length;
  if (room < 1) throw new Error(`the prompt has ${ids.length} tokens; the model's context is ${model.maxPositions}`);
  if (maxTokens !== null && maxTokens > room)
    throw new Error(
      `--max-tokens ${maxTokens} and the prompt's ${ids.length} tokens exceed the model's context of ${model.maxPositions}`,
    );

  const eos = [tokenizer.eosId];
  if (values.chat) eos.push(tokenizer.tokenToId(CHAT_TOKENS.end));
  const eosTokenIds = eos.filter((id) => id !== null);
  const stream = textStreamer(tokenizer);
  const stop = new Set(eosTokenIds);
  generate(model, [ids], {
    maxNewTokens: maxTokens ?? Math.min(128, room),
    temperature,
    topK,
    topP,
    seed,
    eosTokenIds,
    padTokenId: tokenizer.padId ?? eosTokenIds[0] ?? 0,
    onToken: (_row, token) => {
      if (!stop.has(token)) process.stdout.write(stream.push(token));
    },
  });
  process.stdout.write(`${stream.flush()}\n`);
  return 0;
}
