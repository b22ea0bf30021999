// instructkit ppo: RLHF step 3 — PPO (or PPO-ptx) of an SFT policy against a reward model or a programmatic reward.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadPretrained, loadScalarPretrained, ScalarModel } from '../../models/index.js';
import { loraConfigOf } from '../../models/lora.js';
import { checkPPOConfig, PPOTrainer, ppoDefaults, readPrompts } from '../../rlhf/ppo.js';
import {
  countReward,
  folderKind,
  loadRewardModel,
  type RewardFn,
  rewardModelFn,
  valueOnRewardModel,
} from '../../rlhf/reward_fn.js';
import { Tokenizer } from '../../tokenizer/index.js';
import { listCheckpoints } from '../../train/checkpoint.js';
import { mergeConfig, readConfigFile } from '../../train/config.js';
import { LORA_HELP, loraFlags, loraFlagValues } from '../flags.js';

const HELP = `usage: instructkit ppo --policy SFT_DIR --reward RM_DIR --prompts prompts.jsonl --out DIR [options]

  --policy DIR       SFT model folder (Hugging Face causal LM + tokenizer.json); also the frozen reference
  --reward SPEC      reward model folder (*ForSequenceClassification, 1 label), or count:TEXT (reward = how often
                     TEXT occurs in the response; for demos)
  --prompts FILE     JSONL of {"prompt": ...}
  --out DIR          run folder: metrics.jsonl, samples.jsonl, checkpoints/, and the final policy (+ ema/, value/)
  --ptx FILE         pretraining text for PPO-ptx (token windows of ptxSeqLen)
  --ptx-coef G       γ_ptx (default ${ppoDefaults.ptxCoef}; 0 = plain PPO)
  --value DIR        value model init (default: the reward model folder; with count: a fresh head on the policy)
  --config FILE      JSON or YAML with PPO config fields (printed at start, saved as ppo_config.json)
  --steps N          PPO iterations
  --seed N
  --resume           continue from the newest checkpoint in --out
${LORA_HELP}  With LoRA the policy and the value model train adapters (the value head whole); the reference is the policy
  with its adapters off, so no second copy of the policy is loaded.
`;

export async function run(args: string[]): Promise<number> {
  const { values: o } = parseArgs({
    args,
    options: {
      policy: { type: 'string' },
      reward: { type: 'string' },
      prompts: { type: 'string' },
      out: { type: 'string' },
      ptx: { type: 'string' },
      'ptx-coef': { type: 'string' },
      value: { type: 'string' },
      config: { type: 'string' },
      steps: { type: 'string' },
      seed: { type: 'string' },
      resume: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      ...loraFlags(),
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
  const num = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${flag}: not a number: ${v}`);
    return n;
  };
  let config = o.config ? mergeConfig(ppoDefaults, readConfigFile(o.config), o.config) : ppoDefaults;
  config = mergeConfig(
    config,
    {
      steps: num('steps', o.steps),
      seed: num('seed', o.seed),
      ptxCoef: num('ptx-coef', o['ptx-coef']),
      ...loraFlagValues(o),
    },
    'command line',
  );
  checkPPOConfig(config, o.config ?? 'command line');

  // Every input is checked before a model is loaded.
  const policyDir = o.policy!;
  const out = o.out!;
  if (folderKind(policyDir) !== 'lm') throw new Error(`--policy ${policyDir}: is a reward/value model, not an LM`);
  if (!existsSync(join(policyDir, 'tokenizer.json'))) throw new Error(`--policy ${policyDir}: no tokenizer.json`);
  const programmatic = o.reward!.startsWith('count:');
  if (!programmatic && folderKind(o.reward!) !== 'scalar')
    throw new Error(
      `--reward ${o.reward}: is a language model folder, not a reward model (*ForSequenceClassification)`,
    );
  const valueDir = o.value ?? (programmatic ? null : o.reward!);
  if (valueDir && folderKind(valueDir) !== 'scalar') throw new Error(`--value ${valueDir}: is not a scalar model`);
  const prompts = readPrompts(o.prompts!);
  let ptxText: string | null = null;
  if (o.ptx) {
    if (!existsSync(o.ptx)) throw new Error(`--ptx ${o.ptx}: file not found`);
    ptxText = readFileSync(o.ptx, 'utf8');
    if (ptxText.trim() === '') throw new Error(`--ptx ${o.ptx}: file is empty`);
  }
  if (!o.resume && listCheckpoints(join(out, 'checkpoints')).length > 0)
    throw new Error(`--out ${out}: holds checkpoints of an earlier run; pass --resume or choose another folder`);

  const tokenizer = Tokenizer.fromDir(policyDir);
  const policy = loadPretrained(policyDir);
  let reward: RewardFn;
  let value: ScalarModel | null = null;
  const lora = loraConfigOf(config);
  if (programmatic) reward = countReward(o.reward!.slice('count:'.length));
  else {
    const rm = loadRewardModel(o.reward!);
    // The reward model reads the policy's token ids, so both must share one vocabulary.
    if (rm.trunk.config.vocabSize !== policy.config.vocabSize)
      throw new Error(
        `--reward ${o.reward}: vocabulary of ${rm.trunk.config.vocabSize}, the policy's is ${policy.config.vocabSize}`,
      );
    // With LoRA a value model started from the reward model shares its frozen trunk.
    if (lora && valueDir === o.reward) ({ value, reward } = valueOnRewardModel(rm, lora, config.seed + 1));
    else reward = rewardModelFn(rm);
  }
  const trainer = new PPOTrainer({
    policy,
    ref: config.loraR > 0 ? undefined : loadPretrained(policyDir),
    value: value ?? (valueDir ? loadScalarPretrained(valueDir) : new ScalarModel(loadPretrained(policyDir))),
    baseModels: { policy: policyDir, value: valueDir ?? policyDir },
    reward,
    tokenizer,
    prompts,
    ptxText,
    config,
    outDir: out,
  });
  if (o.resume) {
    const step = trainer.resume();
    console.error(step > 0 ? `resuming after step ${step}` : 'no checkpoint found, starting afresh');
    const saved = join(out, 'ppo_config.json');
    if (step > 0 && existsSync(saved)) {
      const before = JSON.parse(readFileSync(saved, 'utf8')) as Record<string, unknown>;
      const changed = Object.keys(config).filter(
        (k) => k !== 'steps' && JSON.stringify(before[k]) !== JSON.stringify(config[k as keyof typeof config]),
      );
      if (changed.length > 0)
        console.error(`warning: resuming with settings that differ from ${saved}: ${changed.join(', ')}`);
    }
  }
  let stop = false;
  const onSignal = () => {
    console.error('\nstopping after this step (a checkpoint will be written)...');
    stop = true;
  };
  process.once('SIGINT', onSignal);
  try {
    trainer.train({ shouldStop: () => stop });
  } finally {
    process.off('SIGINT', onSignal);
  }
  if (trainer.step < config.steps) {
    console.error(`stopped at step ${trainer.step}; continue with --resume`);
    return 130;
  }
  trainer.save(out);
  console.error(`policy saved to ${out} (EMA weights in ${join(out, 'ema')}, value model in ${join(out, 'value')})`);
  return 0;
}
