// instructkit dpo: Direct Preference Optimization on pairs or rankings (src/rlhf/dpo.ts).
import { parseArgs } from 'node:util';
import type { ComparisonFormat } from '../../rlhf/data.js';
import { checkDpoConfig, DPO_LOSS_TYPES, type DpoConfig, dpoDefaults, trainDpo } from '../../rlhf/dpo.js';
import { mergeConfig, printConfig } from '../../train/config.js';
import { numberFlag, trainerConfig, trainerFlags } from '../flags.js';

const HELP = `usage: instructkit dpo --model SFT_DIR --data prefs.jsonl --out DIR [options]

Trains a policy directly on preferences (DPO): pairs ({"prompt","chosen","rejected"} in TRL's forms, with an
implicit prompt or as conversations) or K-way rankings ({"prompt","responses":[K],"ranking":[best..worst]}, as the
labeling app exports them; every one of the C(K,2) pairs counts). The prompt is rendered with the chat template as
in sft and rm. The reference model's log-probs are computed once before training. Logs TRL's metrics
(rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies, logps/chosen, logps/rejected) per step and
eval/... on held-out comparisons after each epoch; saves the final policy as a Hugging Face folder.

options:
  --model DIR            the model to train (a causal LM with tokenizer.json), usually the SFT model
  --ref DIR              reference model (default: --model as it is before training)
  --data FILE            pairwise / rankings JSONL
  --out DIR              output folder (model, metrics.jsonl, dpo_config.json, checkpoints/)
  --format F             auto (per line), rankings or pairwise (default auto)
  --config FILE          JSON or YAML overriding the defaults below
  --val FILE             held-out comparisons (else --val-fraction of --data's lines)
  --val-fraction F       (default ${dpoDefaults.valFraction})
  --beta B               β (default ${dpoDefaults.beta})
  --loss-type T          ${DPO_LOSS_TYPES.join(' or ')} (default ${dpoDefaults.lossType}); ipo uses per-token mean log-probs
  --label-smoothing E    conservative DPO: probability that a label is flipped, sigmoid only (default ${dpoDefaults.labelSmoothing})
  --epochs N             (default ${dpoDefaults.epochs})
  --lr X                 peak learning rate, warmup then cosine decay (default ${dpoDefaults.lr})
  --batch N              pairs per step (default ${dpoDefaults.batchSize})
  --dropout P            GPT-2 residual dropout (default ${dpoDefaults.dropout})
  --seed N               (default ${dpoDefaults.seed})
  --resume               continue from the newest checkpoint in --out/checkpoints
  --skip-bad             skip malformed, degenerate or too long lines (and say how many) instead of failing
`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...trainerFlags,
      ref: { type: 'string' },
      format: { type: 'string' },
      beta: { type: 'string' },
      'loss-type': { type: 'string' },
      'label-smoothing': { type: 'string' },
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
  const format = (values.format ?? 'auto') as ComparisonFormat;
  if (!['auto', 'rankings', 'pairwise'].includes(format)) {
    console.error(`dpo: --format must be auto, rankings or pairwise, got "${format}"`);
    return 2;
  }
  const numbers = trainerConfig(dpoDefaults, values, {
    beta: numberFlag(values.beta, '--beta'),
    labelSmoothing: numberFlag(values['label-smoothing'], '--label-smoothing'),
  });
  const config: DpoConfig = mergeConfig(numbers, { lossType: values['loss-type'] }, 'command line');
  checkDpoConfig(config, values.config ?? 'dpo options');
  printConfig('dpo config', config);
  const result = trainDpo({
    modelDir: values.model,
    refModelDir: values.ref,
    dataFile: values.data,
    outDir: values.out,
    config,
    format,
    valFile: values.val,
    resume: values.resume,
    skipBad: values['skip-bad'],
  });
  const acc = result.eval['eval/rewards/accuracies'];
  if (acc !== undefined) console.log(`dpo: held-out reward accuracy ${(100 * Number(acc)).toFixed(1)}%`);
  console.log(`dpo: ${result.steps} steps on ${result.trainPairs} pairs; saved to ${values.out}`);
  return 0;
}
