// instructkit rm: trains the reward model on rankings (src/rlhf/reward.ts).
import { parseArgs } from 'node:util';
import { rmSpec, trainRewardModel } from '../../rlhf/reward.js';
import { comparisonFormat, DATA_FLAGS, DATA_HELP, FORMAT_HELP, RUN_FLAGS, RUN_HELP } from '../flags.js';

const HELP = `usage: instructkit rm --model SFT_DIR --data rankings.jsonl --out DIR [options]

Trains a reward model: the SFT model with a scalar head, on rankings
({"prompt","responses":[K],"ranking":[best..worst],"labeler"?}, K 2..9) or pairs ({"prompt","chosen","rejected"}).
Every response of a prompt shares its batch; the loss covers all C(K,2) pairs. Reports held-out pairwise accuracy
(overall and per labeler), then sets the head's bias so that demonstrations score 0 on average.

${DATA_HELP}
${FORMAT_HELP}
  --demos FILE             demonstrations for the bias calibration (default: top-ranked training responses)

options:
${rmSpec.help()}
${RUN_HELP}`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...DATA_FLAGS,
      format: { type: 'string' },
      demos: { type: 'string' },
      ...rmSpec.options(),
      ...RUN_FLAGS,
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.model || !values.data || !values.out) {
    console.error(`rm: --model, --data and --out are required\n\n${HELP}`);
    return 2;
  }
  const format = comparisonFormat('rm', values.format);
  const result = trainRewardModel({
    modelDir: values.model,
    base: values.base,
    dataFile: values.data,
    outDir: values.out,
    config: rmSpec.fromArgs(values),
    format,
    valFile: values.val,
    demosFile: values.demos,
    resume: values.resume,
    forceConfig: values['force-config'],
    skipBad: values['skip-bad'],
    handleSignals: true,
  });
  if (result.val) {
    console.log(`rm: held-out pairwise accuracy ${(100 * result.val.accuracy).toFixed(1)}%`);
    for (const [labeler, acc] of Object.entries(result.val.perLabeler))
      console.log(`  ${labeler.padEnd(20)} ${(100 * acc).toFixed(1)}%`);
  }
  console.log(`rm: ${result.steps} steps; saved to ${values.out}`);
  return result.aborted ? 130 : 0;
}
