// instructkit grpo: GRPO / RLOO against a reward model, a verifier module, or both (src/rlhf/grpo.ts).
import { parseArgs } from 'node:util';
import { grpoSpec, trainGrpo } from '../../rlhf/grpo.js';
import { BASE_HELP, RUN_FLAGS, RUN_HELP } from '../flags.js';

const HELP = `usage: instructkit grpo --policy SFT_DIR --prompts prompts.jsonl --out DIR
                      (--reward-model RM_DIR | --reward-module verifier.js | both) [options]

Samples G completions per prompt and trains the policy on advantages taken within each group (no value model):
GRPO (r − mean)/(std + eps) or RLOO (r − the mean of the other G − 1), with PPO's clipped token-level objective
and a k3 KL to the reference (the policy as it starts) as a loss term or, with --kl-in-reward, inside the reward.
Prompts are rendered in the policy's prompt format, as sft trains them. Writes metrics.jsonl (reward, reward_std,
rewards/<source>, objective/kl, policy/clipfrac, ...), samples.jsonl, grpo_config.json, checkpoints/ and the final
policy (a Hugging Face folder).

  --policy DIR             the model to train (a causal LM with tokenizer.json), usually the SFT model, or a LoRA
                           run's adapter folder
${BASE_HELP}
  --prompts FILE           JSONL of {"prompt": ...}
  --out DIR                run folder
  --reward-model DIR       reward model folder (*ForSequenceClassification, 1 label; as instructkit rm writes)
  --reward-module FILE     a .js/.mjs (or single-file .ts) module whose default export is
                           (prompt, completion) => number | Promise<number>, e.g. dist/src/demo/verifier.js (the
                           demo world's answer checker); it is called once on the first prompt and "" before training

options:
${grpoSpec.help()}
${RUN_HELP}`;

export async function run(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    options: {
      policy: { type: 'string' },
      base: { type: 'string' },
      prompts: { type: 'string' },
      out: { type: 'string' },
      'reward-model': { type: 'string' },
      'reward-module': { type: 'string' },
      ...grpoSpec.options(),
      ...RUN_FLAGS,
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
  const r = await trainGrpo({
    policyDir: v.policy,
    base: v.base,
    prompts: v.prompts,
    outDir: v.out,
    config: grpoSpec.fromArgs(v),
    rewardModelDir: v['reward-model'],
    rewardModule: v['reward-module'],
    resume: v.resume,
    forceConfig: v['force-config'],
    handleSignals: true,
  });
  if (r.aborted) {
    console.error(`stopped after step ${r.steps}; continue with --resume`);
    return 130;
  }
  const fmt = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
  console.log(`grpo: ${r.steps} steps; mean reward ${fmt(r.firstReward)} → ${fmt(r.lastReward)}; saved to ${v.out}`);
  return 0;
}
