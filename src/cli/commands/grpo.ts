// instructkit grpo: GRPO / RLOO against a reward model, a verifier module, or both (src/rlhf/grpo.ts, grpo_train.ts).
import { parseArgs } from 'node:util';
import { ADVANTAGE_ESTIMATORS, checkGrpoConfig, type GrpoConfig, grpoDefaults } from '../../rlhf/grpo.js';
import { trainGrpo } from '../../rlhf/grpo_train.js';
import { mergeConfig, printConfig, readConfigFile } from '../../train/config.js';
import { numberFlag } from '../flags.js';

const d = grpoDefaults;
const HELP = `usage: instructkit grpo --policy SFT_DIR --prompts prompts.jsonl --out DIR
                      (--reward-model RM_DIR | --reward-module verifier.js | both) [options]

Samples G completions per prompt and trains the policy on advantages taken within each group (no value model):
GRPO (r − mean)/(std + eps) or RLOO (r − the mean of the other G − 1), with PPO's clipped token-level objective
and a k3 KL to the reference (the policy as it starts) as a loss term or, with --kl-in-reward, inside the reward.
Prompts are rendered with the chat template, as sft trains them. Writes metrics.jsonl (reward, reward_std,
rewards/<source>, objective/kl, policy/clipfrac, ...), samples.jsonl, grpo_config.json, checkpoints/ and the final
policy (a Hugging Face folder).

options:
  --policy DIR           the model to train (a causal LM with tokenizer.json), usually the SFT model
  --prompts FILE         JSONL of {"prompt": ...}
  --out DIR              run folder
  --reward-model DIR     reward model folder (*ForSequenceClassification, 1 label; as instructkit rm writes)
  --reward-module FILE   a .js/.mjs (or single-file .ts) module whose default export is
                         (prompt, completion) => number | Promise<number>, e.g. dist/src/demo/verifier.js (the
                         demo world's answer checker); it is called once on the first prompt and "" before training
  --reward-weights W,W   weights of the reward model and the module, in that order (default 1 each)
  --estimator E          ${ADVANTAGE_ESTIMATORS.join(' or ')} (default ${d.estimator})
  --group-size G         completions per prompt (default ${d.groupSize})
  --no-scale-rewards     GRPO without dividing by the group's std (Dr. GRPO)
  --beta B               KL coefficient (default ${d.beta}; 0: no reference model is loaded)
  --kl-in-reward         subtract β·KL from the reward instead of adding β·KL to the loss
  --steps N              iterations (default ${d.steps})
  --batch N              prompts per iteration (default ${d.batchSize})
  --mini-batch N         completions per gradient step (default ${d.miniBatchSize})
  --iterations N         passes over each iteration's completions (default ${d.iterations})
  --lr X                 (default ${d.lr})
  --max-new-tokens N     (default ${d.maxNewTokens})
  --temperature T        sampling temperature (default ${d.temperature})
  --clip-range E         ε of the clipped objective (default ${d.clipRange})
  --save-every N         checkpoint every N iterations (default ${d.saveEvery})
  --seed N               (default ${d.seed})
  --config FILE          JSON or YAML with grpo config fields (printed at start, saved as grpo_config.json)
  --resume               continue from the newest checkpoint in --out (refused when a setting other than
                         --steps changed, naming it)
  --force-config         resume even so, with the new settings
`;

export async function run(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    options: {
      policy: { type: 'string' },
      prompts: { type: 'string' },
      out: { type: 'string' },
      'reward-model': { type: 'string' },
      'reward-module': { type: 'string' },
      'reward-weights': { type: 'string' },
      estimator: { type: 'string' },
      'group-size': { type: 'string' },
      'no-scale-rewards': { type: 'boolean' },
      beta: { type: 'string' },
      'kl-in-reward': { type: 'boolean' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      'mini-batch': { type: 'string' },
      iterations: { type: 'string' },
      lr: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'clip-range': { type: 'string' },
      'save-every': { type: 'string' },
      seed: { type: 'string' },
      config: { type: 'string' },
      resume: { type: 'boolean' },
      'force-config': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  if (!v.policy || !v.prompts || !v.out) {
    console.error(`grpo: --policy, --prompts and --out are required\n\n${HELP}`);
    return 2;
  }
  if (!v['reward-model'] && !v['reward-module']) {
    console.error(`grpo: give --reward-model, --reward-module or both\n\n${HELP}`);
    return 2;
  }
  const weights = v['reward-weights']?.split(',').map((w, i) => numberFlag(w, `--reward-weights (item ${i + 1})`)!);
  const fromFile = v.config ? mergeConfig(grpoDefaults, readConfigFile(v.config), v.config) : grpoDefaults;
  const config: GrpoConfig = mergeConfig(
    fromFile,
    {
      estimator: v.estimator,
      groupSize: numberFlag(v['group-size'], '--group-size'),
      scaleRewards: v['no-scale-rewards'] ? false : undefined,
      beta: numberFlag(v.beta, '--beta'),
      klInReward: v['kl-in-reward'] || undefined,
      steps: numberFlag(v.steps, '--steps'),
      batchSize: numberFlag(v.batch, '--batch'),
      miniBatchSize: numberFlag(v['mini-batch'], '--mini-batch'),
      iterations: numberFlag(v.iterations, '--iterations'),
      lr: numberFlag(v.lr, '--lr'),
      maxNewTokens: numberFlag(v['max-new-tokens'], '--max-new-tokens'),
      temperature: numberFlag(v.temperature, '--temperature'),
      clipRange: numberFlag(v['clip-range'], '--clip-range'),
      saveEvery: numberFlag(v['save-every'], '--save-every'),
      seed: numberFlag(v.seed, '--seed'),
      rewardWeights: weights,
    },
    'command line',
  );
  checkGrpoConfig(config, v.config ?? 'grpo options');
  printConfig('grpo config', config);
  const controller = new AbortController();
  const onSignal = () => {
    console.error('\nstopping after this iteration (a checkpoint will be written)...');
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  try {
    const r = await trainGrpo({
      policyDir: v.policy,
      prompts: v.prompts,
      outDir: v.out,
      config,
      rewardModelDir: v['reward-model'],
      rewardModule: v['reward-module'],
      resume: v.resume,
      forceConfig: v['force-config'],
      signal: controller.signal,
    });
    if (r.aborted) {
      console.error(`stopped after iteration ${r.steps}; continue with --resume`);
      return 130;
    }
    const fmt = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
    console.log(
      `grpo: ${r.steps} iterations; mean reward ${fmt(r.firstReward)} → ${fmt(r.lastReward)}; saved to ${v.out}`,
    );
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
  }
}
