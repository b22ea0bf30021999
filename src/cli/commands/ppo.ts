// instructkit ppo: RLHF step 3 — PPO (or PPO-ptx) of an SFT policy against a reward model or a programmatic reward.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  folderKind,
  loadModelFolder,
  loadRewardModel,
  loadScalarFolder,
  ScalarModel,
  tokenizerFolder,
} from '../../models/index.js';
import { loraConfigOf } from '../../models/lora.js';
import { readPrompts } from '../../rlhf/data.js';
import { checkPPOConfig, PPOTrainer, ppoSpec } from '../../rlhf/ppo.js';
import { countReward, type RewardFn, rewardModelFn, valueOnRewardModel } from '../../rlhf/reward_fn.js';
import { Formatter, Tokenizer } from '../../tokenizer/index.js';
import { corpusTokens } from '../../train/tokens.js';
import { BASE_HELP, RUN_FLAGS, RUN_HELP } from '../flags.js';

const HELP = `usage: instructkit ppo --policy SFT_DIR --reward RM_DIR --prompts prompts.jsonl --out DIR [options]

  --policy DIR             SFT model folder (Hugging Face causal LM + tokenizer.json); also the frozen reference;
                           or a LoRA run's adapter folder (reward and value folders may be adapter folders too)
${BASE_HELP}
  --reward SPEC            reward model folder (*ForSequenceClassification, 1 label), or count:TEXT (reward = how
                           often TEXT occurs in the response; for demos)
  --prompts FILE           JSONL of {"prompt": ...}, rendered in the policy's prompt format (--prompt-format)
  --out DIR                run folder: metrics.jsonl, samples.jsonl, checkpoints/, the final policy (+ ema/, value/)
  --ptx FILE...            pretraining corpus for PPO-ptx, read as pretrain reads it (.txt or .jsonl {"text"})
  --value DIR              value model init (default: the reward model folder; with count: a fresh head on the policy)

options:
${ppoSpec.help()}
${RUN_HELP}`;

// Wrong folders are named with the flag that gave them.
function expectKind(flag: string, dir: string, want: 'causal' | 'scalar', base?: string): void {
  let kind: string;
  try {
    kind = folderKind(dir, base);
  } catch (e) {
    throw new Error(`${flag} ${dir}: ${(e as Error).message}`);
  }
  if (kind !== want)
    throw new Error(
      want === 'causal'
        ? `${flag} ${dir}: is a reward/value model, not a causal LM`
        : `${flag} ${dir}: is a language model folder, not a reward model (*ForSequenceClassification)`,
    );
}

export async function run(args: string[]): Promise<number> {
  const { values: o } = parseArgs({
    args,
    options: {
      policy: { type: 'string' },
      base: { type: 'string' },
      reward: { type: 'string' },
      prompts: { type: 'string' },
      out: { type: 'string' },
      ptx: { type: 'string', multiple: true },
      value: { type: 'string' },
      ...ppoSpec.options(),
      ...RUN_FLAGS,
    },
  });
  if (o.help) {
    console.log(HELP);
    return 0;
  }
  for (const k of ['policy', 'reward', 'prompts', 'out'] as const)
    if (!o[k]) {
      console.error(`instructkit ppo: --${k} is required\n\n${HELP}`);
      return 2;
    }
  const config = ppoSpec.fromArgs(o);
  checkPPOConfig(config, o.config ?? 'command line');

  // Every input is checked before a model is loaded.
  const policyDir = o.policy!;
  const out = o.out!;
  const base = o.base;
  expectKind('--policy', policyDir, 'causal', base);
  const tokenizerDir = tokenizerFolder(policyDir, base);
  if (!existsSync(join(tokenizerDir, 'tokenizer.json'))) throw new Error(`--policy ${policyDir}: no tokenizer.json`);
  const programmatic = o.reward!.startsWith('count:');
  if (!programmatic) expectKind('--reward', o.reward!, 'scalar');
  const valueDir = o.value ?? (programmatic ? null : o.reward!);
  if (valueDir) expectKind('--value', valueDir, 'scalar');
  const prompts = readPrompts(o.prompts!);
  const tokenizer = Tokenizer.fromDir(tokenizerDir);
  const formatter = new Formatter(tokenizer, policyDir, config.promptFormat);
  const ptxTokens = o.ptx ? corpusTokens(o.ptx, tokenizer) : null;

  const policy = loadModelFolder(policyDir, { base });
  let reward: RewardFn;
  let value: ScalarModel | null = null;
  const lora = loraConfigOf(config);
  // Frozen models are held in bf16 with --bf16 (half their memory), a reward model whose trunk the value model shares
  // (LoRA) too: the value model's gradients flow through the frozen trunk to its adapters and head.
  const shared = lora !== null && !programmatic && valueDir === o.reward;
  const frozen = { dtype: config.bf16 ? ('bf16' as const) : ('f32' as const) };
  if (programmatic) reward = countReward(o.reward!.slice('count:'.length));
  else {
    const rm = loadRewardModel(o.reward!, frozen).model;
    // The reward model reads the policy's token ids, so both must share one vocabulary.
    if (rm.trunk.config.vocabSize !== policy.config.vocabSize)
      throw new Error(
        `--reward ${o.reward}: vocabulary of ${rm.trunk.config.vocabSize}, the policy's is ${policy.config.vocabSize}`,
      );
    // With LoRA a value model started from the reward model shares its frozen trunk.
    if (shared) ({ value, reward } = valueOnRewardModel(rm, formatter.padId, lora, config.seed + 1));
    else reward = rewardModelFn(rm, formatter.padId);
  }
  const trainer = new PPOTrainer({
    policy,
    // With LoRA the reference is the policy with its adapters off: no second copy.
    ref: lora ? undefined : loadModelFolder(policyDir, { ...frozen, base }),
    value: value ?? (valueDir ? loadScalarFolder(valueDir) : new ScalarModel(loadModelFolder(policyDir, { base }))),
    baseModels: { policy: policyDir, value: valueDir ?? policyDir },
    reward,
    formatter,
    prompts,
    ptxTokens,
    // Saved resolved, so that the run records the format it sampled in.
    config: { ...config, promptFormat: formatter.format },
    outDir: out,
    // As given, as the other trainers record theirs: a training worker passes paths relative to the models folder,
    // so that a worker that mounts it elsewhere resumes the same run.
    inputs: {
      policy: policyDir,
      reward: o.reward!,
      prompts: o.prompts!,
      ptx: o.ptx ?? null,
      value: valueDir ?? null,
    },
  });
  trainer.train({ resume: o.resume, forceConfig: o['force-config'], handleSignals: true });
  if (trainer.stepsDone < config.steps) {
    console.error(`stopped at step ${trainer.stepsDone}; continue with --resume`);
    return 130;
  }
  trainer.save(out);
  console.error(`policy saved to ${out} (EMA weights in ${join(out, 'ema')}, value model in ${join(out, 'value')})`);
  return 0;
}
