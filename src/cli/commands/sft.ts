// instructkit sft: supervised fine-tuning on demonstrations (src/rlhf/sft.ts).
import { parseArgs } from 'node:util';
import { checkSftConfig, type SftConfig, sftDefaults, trainSft } from '../../rlhf/sft.js';
import { printConfig } from '../../train/config.js';
import { LORA_HELP, trainerConfig, trainerFlags } from '../flags.js';

const HELP = `usage: instructkit sft --model DIR --data demos.jsonl --out DIR [options]

Fine-tunes a causal LM on demonstrations ({"prompt","completion"} or {"messages":[...]} lines): the prompt is
rendered with the chat template, the loss covers the completion and EOS only. Saves the best epoch (by the reward
model's score of greedy validation samples with --reward-model, else by validation loss) as a Hugging Face folder.

options:
  --model DIR            causal LM folder (config.json, model.safetensors, tokenizer.json)
  --data FILE            demonstrations JSONL
  --out DIR              output folder (model, metrics.jsonl, checkpoints/)
  --config FILE          JSON or YAML overriding the defaults below
  --val FILE             validation demonstrations (else --val-fraction of --data is held out)
  --val-fraction F       share held out when there is no --val (default ${sftDefaults.valFraction})
  --reward-model DIR     reward model folder: choose the epoch by its score of greedy validation samples
  --epochs N             (default ${sftDefaults.epochs})
  --lr X                 peak learning rate, warmup then cosine decay (default ${sftDefaults.lr})
  --batch N              demonstrations per step (default ${sftDefaults.batchSize})
  --dropout P            GPT-2 residual dropout (default ${sftDefaults.dropout})
  --seed N               (default ${sftDefaults.seed})
  --resume               continue from the newest checkpoint in --out/checkpoints
  --skip-bad             skip malformed or too long lines (and say how many) instead of failing
${LORA_HELP}`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...trainerFlags,
      'reward-model': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.model || !values.data || !values.out) {
    console.error(`sft: --model, --data and --out are required\n\n${HELP}`);
    return 2;
  }
  const config: SftConfig = trainerConfig(sftDefaults, values);
  checkSftConfig(config, values.config ?? 'sft options');
  printConfig('sft config', config);
  const result = trainSft({
    modelDir: values.model,
    dataFile: values.data,
    outDir: values.out,
    config,
    valFile: values.val,
    rewardModelDir: values['reward-model'],
    resume: values.resume,
    skipBad: values['skip-bad'],
  });
  const chosen =
    result.bestEpoch === null
      ? 'no epoch finished'
      : `epoch ${result.bestEpoch + 1} by ${result.selectedBy}${result.bestValue === null ? '' : ` (${result.bestValue.toFixed(4)})`}`;
  console.log(`sft: ${result.steps} steps; saved ${chosen} to ${values.out}`);
  return 0;
}
