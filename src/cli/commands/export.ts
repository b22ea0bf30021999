// instructkit export: a model folder as one GGUF file (llama.cpp, node-llama-cpp, Ollama, LM Studio) or as a
// Hugging Face folder in another dtype.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  exportGguf,
  GGUF_DTYPES,
  type GgufDType,
  loadModelFolder,
  savePretrained,
  tokenizerFolder,
} from '../../models/index.js';
import { Tokenizer } from '../../tokenizer/index.js';

const HELP = `usage: instructkit export --format gguf|safetensors [--dtype DTYPE] MODEL OUT

Writes the model folder MODEL (config.json, model.safetensors, tokenizer.json) in another form; MODEL may be a LoRA
run's adapter folder (written merged into its base):

  --format gguf          OUT is a .gguf file with the tokenizer and chat template in its metadata, for llama.cpp,
                         node-llama-cpp, Ollama or LM Studio (GPT-2 and Llama-family models)
  --format safetensors   OUT is a Hugging Face folder (config.json, model.safetensors, tokenizer files)
  --dtype DTYPE          gguf: f32 (default), bf16 or q8_0; safetensors: f32 (default) or bf16 (torch's bfloat16)
  --base DIR             the base of an adapter folder (default: adapter_config.json's base_model_name_or_path)
  -h, --help             this text

Everything is checked before anything is written, and files are written whole and renamed into place.`;

const FORMATS = ['gguf', 'safetensors'] as const;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: 'string' },
      dtype: { type: 'string' },
      base: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const format = values.format as (typeof FORMATS)[number] | undefined;
  if (!format || !FORMATS.includes(format))
    throw new Error(`--format: expected one of ${FORMATS.join(', ')}, got ${JSON.stringify(values.format ?? null)}`);
  const dtypes: readonly string[] = format === 'gguf' ? GGUF_DTYPES : ['f32', 'bf16'];
  const dtype = values.dtype ?? 'f32';
  if (!dtypes.includes(dtype))
    throw new Error(
      `--dtype: expected one of ${dtypes.join(', ')} for --format ${format}, got ${JSON.stringify(dtype)}`,
    );
  if (positionals.length !== 2) throw new Error('give the model folder and the output: export [options] MODEL OUT');
  const [dir, out] = positionals;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: model folder not found`);
  if (resolve(dir) === resolve(out)) throw new Error(`${out}: the output must differ from the model folder`);
  const tokDir = tokenizerFolder(dir, values.base);
  const tokenizer = Tokenizer.fromDir(tokDir);
  const model = loadModelFolder(dir, { dtype: 'auto', base: values.base });
  if (format === 'gguf') {
    if (existsSync(out) && statSync(out).isDirectory()) throw new Error(`${out}: is a folder; give a .gguf file path`);
    if (!existsSync(dirname(resolve(out)))) throw new Error(`${dirname(out)}: folder not found`);
    exportGguf(model, tokenizer, out, { dtype: dtype as GgufDType }, join(tokDir, 'tokenizer.json'));
  } else {
    savePretrained(model, out, { dtype: dtype as 'f32' | 'bf16' });
    tokenizer.save(out);
  }
  console.log(`wrote ${out} (${format}, ${dtype})`);
  return 0;
}
