// instructkit rm: trains the reward model on rankings (src/rlhf/reward.ts).
import { parseArgs } from 'node:util';
import type { ComparisonFormat } from '../../rlhf/data.js';
import { checkRmConfig, type RmConfig, rmDefaults, trainRewardModel } from '../../rlhf/reward.js';
import { printConfig } from '../../train/config.js';
import { LORA_HELP, numberFlag, trainerConfig, trainerFlags } from '../flags.js';

const HELP = `usage: instructkit rm --model SFT_DIR --data rankings.jsonl --out DIR [options]

Trains a reward model: the SFT model with a scalar head, on rankings
({"prompt","responses":[K],"ranking":[best..worst],"labeler"?}, K 2..9) or pairs ({"prompt","chosen","rejected"}).
Every response of a prompt shares its batch; the loss covers all C(K,2) pairs. Reports held-out pairwise accuracy
(overall and per labeler), then sets the head's bias so that demonstrations score 0 on average.

options:
  --model DIR            SFT model folder (a causal LM with tokenizer.json)
  --data FILE            rankings / pairwise JSONL
  --out DIR              output folder (reward model, metrics.jsonl, checkpoints/)
  --format F             auto (per line), rankings or pairwise (default auto)
  --config FILE          JSON or YAML overriding the defaults below
  --val FILE             held-out comparisons (else --val-fraction of --data)
  --val-fraction F       (default ${rmDefaults.valFraction})
  --demos FILE           demonstrations for the bias calibration (default: top-ranked training responses)
  --margin M             required score gap between a better and a worse response (default ${rmDefaults.margin})
  --epochs N             (default ${rmDefaults.epochs})
  --lr X                 (default ${rmDefaults.lr})
  --batch N              prompts per step, each with all its responses (default ${rmDefaults.batchSize})
  --dropout P            GPT-2 residual dropout (default ${rmDefaults.dropout})
  --seed N               (default ${rmDefaults.seed})
  --resume               continue from the newest checkpoint in --out/checkpoints
  --skip-bad             skip malformed or too long lines (and say how many) instead of failing
${LORA_HELP}`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...trainerFlags,
      format: { type: 'string' },
      demos: { type: 'string' },
      margin: { type: 'string' },
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
  const format = (values.format ?? 'auto') as ComparisonFormat;
  if (!['auto', 'rankings', 'pairwise'].includes(format)) {
    console.error(`rm: --format must be auto, rankings or pairwise, got "${format}"`);
    return 2;
  }
  const config: RmConfig = trainerConfig(rmDefaults, values, { margin: numberFlag(values.margin, '--margin') });
  checkRmConfig(config, values.config ?? 'rm options');
  printConfig('rm config', config);
  const result = trainRewardModel({
    modelDir: values.model,
    dataFile: values.data,
    outDir: values.out,
    config,
    format,
    valFile: values.val,
    demosFile: values.demos,
    resume: values.resume,
    skipBad: values['skip-bad'],
  });
  if (result.val) {
    console.log(`rm: held-out pairwise accuracy ${(100 * result.val.accuracy).toFixed(1)}%`);
    for (const [labeler, acc] of Object.entries(result.val.perLabeler))
      console.log(`  ${labeler.padEnd(20)} ${(100 * acc).toFixed(1)}%`);
  }
  console.log(`rm: ${result.steps} steps; saved to ${values.out}`);
  return 0;
}
