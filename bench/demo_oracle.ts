// How much of RLHF's correctness gain the demo's reward model leaves on the table, measured on a finished demo run
// folder: PPO-ptx from where the run's PPO-ptx started (rs/), with the run's settings, against a perfect reward
// model — the training labelers' own judgement without its noise (their mean weights on the world's features) —
// instead of the trained one. Its scores are put on the trained reward model's scale (same spread over the held-out
// rankings' responses), so the KL penalty weighs the same. Then SFT, that start, the run's PPO-ptx and this one
// answer the evaluation prompts.
// Usage: node dist/bench/demo_oracle.js RUN_DIR [--size tiny|small] [--seed N] [--ppo-seed N] [--prompts N]
//   --prompts: PPO prompts drawn from the world (default: the run's own split; more tests whether more prompts help)
// Last line: one JSON object (correct per phrasing split and abstaining, per model).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_CONFIGS, type DemoSize } from '../src/demo/demo.js';
import { chatAnswers, modelStats, rewardModelScores } from '../src/demo/evaluate.js';
import { cleanJudgement, responseFeatures, TRAINING_WEIGHTS } from '../src/demo/labelers/index.js';
import { buildWorld, type Task } from '../src/demo/world/index.js';
import { loadPretrained, loadScalarPretrained } from '../src/models/index.js';
import { readComparisons, readPrompts } from '../src/rlhf/data.js';
import { PPOTrainer, ppoDefaults } from '../src/rlhf/ppo.js';
import { Formatter, Tokenizer } from '../src/tokenizer/index.js';
import { corpusTokens } from '../src/train/tokens.js';

const args = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const run = args[0];
if (!run || run.startsWith('--'))
  throw new Error('usage: demo_oracle RUN_DIR [--size tiny|small] [--seed N] [--ppo-seed N] [--prompts N]');
const size = flag('--size', 'small') as DemoSize;
const seed = Number(flag('--seed', '0'));
const cfg = DEMO_CONFIGS[size];
const ppoPrompts = Number(flag('--prompts', String(cfg.world.ppo)));
// Only the PPO split grows with --prompts: it is drawn last, so the other splits stay the run's.
const world = buildWorld(seed, { sizes: { ...cfg.world, ppo: ppoPrompts } });
const byPrompt = new Map<string, Task>([...world.ppo, ...world.eval].map((t) => [t.prompt, t]));

/** The training pool's judgement of a response without its noise. */
const utility = (task: Task, response: string) => cleanJudgement(TRAINING_WEIGHTS, responseFeatures(task, response));

const sd = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
};

// The trained reward model's spread over the held-out rankings' responses, and the utility's over the same.
const initDir = join(run, 'rs');
const rmDir = join(run, 'rm');
const tokenizer = Tokenizer.fromDir(initDir);
const formatter = new Formatter(tokenizer, initDir);
const heldout = readComparisons(join(run, 'data', 'rankings_heldout.jsonl')).records;
const rmSpread = sd(rewardModelScores(rmDir, heldout));
const utilities = heldout.flatMap((r) => r.responses.map((x) => utility(byPrompt.get(r.prompt)!, x)));
const scale = rmSpread / sd(utilities);

const out = mkdtempSync(join(tmpdir(), 'ik-oracle-'));
try {
  const promptsFile = join(out, 'prompts.jsonl');
  writeFileSync(promptsFile, world.ppo.map((t) => `${JSON.stringify({ prompt: t.prompt })}\n`).join(''));
  const trainer = new PPOTrainer({
    policy: loadPretrained(initDir),
    ref: loadPretrained(initDir),
    value: loadScalarPretrained(rmDir),
    reward: (prompts, responses) => prompts.map((p, i) => scale * utility(byPrompt.get(p)!, responses[i])),
    formatter,
    prompts: readPrompts(promptsFile),
    ptxTokens: corpusTokens([join(run, 'data', 'corpus.txt')], tokenizer),
    config: {
      ...ppoDefaults,
      ...cfg.ppo,
      ptxCoef: cfg.ptxCoef,
      ptxSeqLen: cfg.pretrain.seq,
      seed: Number(flag('--ppo-seed', String(seed))),
    },
    outDir: out,
  });
  trainer.train();
  trainer.save(out);
  trainer.dispose();

  const greedy = { maxNewTokens: cfg.maxNewTokens, temperature: 0, seed };
  const models = {
    sft: join(run, 'sft'),
    rs: initDir,
    ppo_ptx: join(run, 'ppo_ptx', 'ema'),
    ppo_ptx_oracle: join(out, 'ema'),
  };
  const result = Object.fromEntries(
    Object.entries(models).map(([name, dir]) => {
      const s = modelStats(world.eval, chatAnswers(dir, world.eval, greedy));
      return [
        name,
        {
          correct: { train: s.byPhrasing.train.correct, heldout: s.byPhrasing.heldout.correct },
          abstain: s.abstain,
          overAbstain: s.overAbstain,
        },
      ];
    }),
  );
  console.log(JSON.stringify({ run, seed, ppoPrompts, scale, ...result }));
} finally {
  rmSync(out, { recursive: true, force: true });
}
