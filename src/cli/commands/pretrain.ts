// instructkit pretrain: trains a GPT-2 or Llama model from scratch on plain-text corpora (see src/train/pretrain.ts).
import { parseArgs } from 'node:util';
import { pretrain, pretrainSpec } from '../../train/pretrain.js';
import { RUN_FLAGS, RUN_HELP } from '../flags.js';

const HELP = `usage: instructkit pretrain --corpus FILE... --out DIR [options]

Trains a byte-level BPE tokenizer on the corpus (unless --tokenizer is given), then a model from scratch. The
output folder ends as a Hugging Face checkpoint (config.json, model.safetensors, tokenizer.json).
Corpus: plain UTF-8 text; documents are separated by blank lines, and each file ends a document.

options:
${pretrainSpec.help()}
${RUN_HELP}`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...pretrainSpec.options(), ...RUN_FLAGS },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  // `--corpus a.txt b.txt`: files listed after the flag arrive as positionals.
  const all = values as Record<string, unknown>;
  const corpus = all.corpus as string[] | undefined;
  if (!corpus && positionals.length > 0)
    throw new Error(`unexpected argument ${JSON.stringify(positionals[0])} (corpus files go after --corpus)`);
  if (corpus) all.corpus = [...corpus, ...positionals];
  const config = pretrainSpec.fromArgs(all);
  const result = pretrain(config, {
    resume: values.resume,
    forceConfig: values['force-config'],
    handleSignals: true,
  });
  if (result.stopped) {
    console.error(`pretrain: stopped; continue with --resume`);
    return 130;
  }
  console.log(result.out);
  return 0;
}
