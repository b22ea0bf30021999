// instructkit sft: supervised fine-tuning on demonstrations (src/rlhf/sft.ts).
import { parseArgs } from 'node:util';
import { sftSpec, trainSft } from '../../rlhf/sft.js';
import { DATA_FLAGS, DATA_HELP, RUN_FLAGS, RUN_HELP } from '../flags.js';

const HELP = `usage: instructkit sft --model DIR --data demos.jsonl --out DIR [options]

Fine-tunes a causal LM on demonstrations ({"prompt","completion"} or {"messages":[...]} lines): the prompt is
rendered in the model's prompt format (--prompt-format), the loss covers the completion and EOS only. Saves the best
epoch (by the reward model's score of greedy validation samples with --reward-model, else by validation loss) as a
Hugging Face folder.

${DATA_HELP}
  --reward-model DIR       reward model folder: choose the epoch by its score of greedy validation samples
  --ptx FILE...            pretraining corpus mixed into every update with weight --ptx-coef (as PPO-ptx; .txt or
                           .jsonl {"text"}, read as pretrain reads it), against forgetting the base model's LM

options:
${sftSpec.help()}
${RUN_HELP}`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...DATA_FLAGS,
      'reward-model': { type: 'string' },
      ptx: { type: 'string', multiple: true },
      ...sftSpec.options(),
      ...RUN_FLAGS,
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
  const result = trainSft({
    modelDir: values.model,
    base: values.base,
    dataFile: values.data,
    outDir: values.out,
    config: sftSpec.fromArgs(values),
    valFile: values.val,
    rewardModelDir: values['reward-model'],
    ptxFiles: values.ptx,
    resume: values.resume,
    forceConfig: values['force-config'],
    skipBad: values['skip-bad'],
    handleSignals: true,
  });
  const chosen =
    result.bestEpoch === null
      ? 'no epoch finished'
      : `epoch ${result.bestEpoch + 1} by ${result.selectedBy}${result.bestValue === null ? '' : ` (${result.bestValue.toFixed(4)})`}`;
  console.log(`sft: ${result.steps} steps; saved ${chosen} to ${values.out}`);
  return result.aborted ? 130 : 0;
}
