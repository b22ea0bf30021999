// instructkit pretrain: trains a GPT-2 or Llama model from scratch on plain-text corpora (see src/train/pretrain.ts).
import { parseArgs } from 'node:util';
import { readConfigFile } from '../../train/config.js';
import { pretrain, pretrainDefaults, resolvePretrainConfig } from '../../train/pretrain.js';
import { numberFlag } from '../flags.js';

const HELP = `usage: instructkit pretrain --corpus FILE... --out DIR [options]

Trains a byte-level BPE tokenizer on the corpus (unless --tokenizer is given), then a model from scratch. The
output folder ends as a Hugging Face checkpoint (config.json, model.safetensors, tokenizer.json).
Corpus: plain UTF-8 text; documents are separated by blank lines, and each file ends a document.

  --corpus FILE...     corpus files: plain text (blank lines between documents) or .jsonl ({"text"} per line)
  --out DIR            run folder: checkpoints, metrics.jsonl, pretrain_config.json, the final model
  --config FILE        run config (JSON or YAML) with any fields of pretrain_config.json; flags override it
  --model NAME         gpt2 | llama (default ${pretrainDefaults.model})
  --size NAME          tiny | mini | small (default ${pretrainDefaults.size})
  --tokenizer DIR      use this tokenizer folder instead of training one
  --vocab-size N       vocabulary of the trained tokenizer (default ${pretrainDefaults.vocabSize})
  --steps N            optimizer steps (default ${pretrainDefaults.steps})
  --batch N            windows per step (default ${pretrainDefaults.batch})
  --seq N              tokens per window, and the model's context (default ${pretrainDefaults.seq})
  --lr X               peak learning rate (default ${pretrainDefaults.lr})
  --seed N             seed of the weights and the data order (default ${pretrainDefaults.seed})
  --bf16               bf16 autocast: linear layers and attention multiply in bf16
  --resume             continue from the newest checkpoint in --out (same settings)
  -h, --help           this text`;

// Each numeric flag: its config field and whether it must be an integer.
const NUMBERS: Record<string, [string, boolean]> = {
  'vocab-size': ['vocabSize', true],
  steps: ['steps', true],
  batch: ['batch', true],
  seq: ['seq', true],
  lr: ['lr', false],
  seed: ['seed', true],
};

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      corpus: { type: 'string', multiple: true },
      out: { type: 'string' },
      config: { type: 'string' },
      model: { type: 'string' },
      size: { type: 'string' },
      tokenizer: { type: 'string' },
      'vocab-size': { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      seq: { type: 'string' },
      lr: { type: 'string' },
      seed: { type: 'string' },
      bf16: { type: 'boolean' },
      resume: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  // `--corpus a.txt b.txt`: files listed after the flag arrive as positionals.
  const corpus = values.corpus ? [...values.corpus, ...positionals] : undefined;
  if (!values.corpus && positionals.length > 0)
    throw new Error(`unexpected argument ${JSON.stringify(positionals[0])} (corpus files go after --corpus)`);
  const cli: Record<string, unknown> = {
    corpus,
    out: values.out,
    model: values.model,
    size: values.size,
    tokenizer: values.tokenizer,
    bf16: values.bf16,
  };
  for (const [flag, [field, integer]] of Object.entries(NUMBERS)) {
    const text = values[flag as keyof typeof values];
    if (typeof text === 'string')
      cli[field] = numberFlag(
        text,
        `--${flag}`,
        integer ? Number.isInteger : undefined,
        integer ? 'an integer' : 'a number',
      );
  }
  const layers = [{ values: cli, source: 'command line' }];
  if (values.config) layers.unshift({ values: readConfigFile(values.config), source: values.config });
  const config = resolvePretrainConfig(layers);
  const result = pretrain(config, { resume: values.resume });
  console.log(result.out);
  return 0;
}
