// instructkit dpo: Direct Preference Optimization on pairs or rankings (src/rlhf/dpo.ts).
import { parseArgs } from 'node:util';
import { dpoSpec, trainDpo } from '../../rlhf/dpo.js';
import { comparisonFormat, DATA_FLAGS, DATA_HELP, FORMAT_HELP, RUN_FLAGS, RUN_HELP } from '../flags.js';

const HELP = `usage: instructkit dpo --model SFT_DIR --data prefs.jsonl --out DIR [options]

Trains a policy directly on preferences (DPO): pairs ({"prompt","chosen","rejected"} in TRL's forms, with an
implicit prompt or as conversations) or K-way rankings ({"prompt","responses":[K],"ranking":[best..worst]}, as the
labeling app exports them; every one of the C(K,2) pairs counts). The prompt is rendered in the model's prompt
format as in sft and rm. The reference model's log-probs are computed once before training. Logs TRL's metrics
(rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies, logps/chosen, logps/rejected) per step and
eval/... on held-out comparisons after each epoch; saves the final policy as a Hugging Face folder.

${DATA_HELP}
  --ref DIR                reference model (default: --model as it is before training)
${FORMAT_HELP}

options:
${dpoSpec.help()}
${RUN_HELP}`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...DATA_FLAGS,
      ref: { type: 'string' },
      format: { type: 'string' },
      ...dpoSpec.options(),
      ...RUN_FLAGS,
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.model || !values.data || !values.out) {
    console.error(`dpo: --model, --data and --out are required\n\n${HELP}`);
    return 2;
  }
  const format = comparisonFormat('dpo', values.format);
  const result = trainDpo({
    modelDir: values.model,
    base: values.base,
    refModelDir: values.ref,
    dataFile: values.data,
    outDir: values.out,
    config: dpoSpec.fromArgs(values),
    format,
    valFile: values.val,
    resume: values.resume,
    forceConfig: values['force-config'],
    skipBad: values['skip-bad'],
    handleSignals: true,
  });
  const acc = result.eval['eval/rewards/accuracies'];
  if (acc !== undefined) console.log(`dpo: held-out reward accuracy ${(100 * Number(acc)).toFixed(1)}%`);
  console.log(`dpo: ${result.steps} steps on ${result.trainPairs} pairs; saved to ${values.out}`);
  return result.aborted ? 130 : 0;
}
