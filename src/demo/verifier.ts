// The demo world's answer checker as a verifiable reward: 1 when a completion is correct and obeys the task's
// format constraint, 0 otherwise. `worldVerifier(tasks)` serves code (trainGrpo({ verifier })); the default export
// serves `instructkit grpo --reward-module dist/src/demo/verifier.js`, finding each prompt's task in the worlds the
// demo builds for its seed (INSTRUCTKIT_DEMO_SEED, default 0, as `instructkit demo --seed`) at every size.
import { DEMO_CONFIGS, DEMO_SIZES } from './config.js';
import { buildWorld, SPLITS, type Task } from './world/index.js';

/** A verifier over the given tasks, found by their prompt text; an unknown prompt is an error naming it. */
export function worldVerifier(tasks: Iterable<Task>, where = 'the demo world'): (p: string, c: string) => number {
  const byPrompt = new Map<string, Task>();
  for (const t of tasks) byPrompt.set(t.prompt, t);
  return (prompt, completion) => {
    const task = byPrompt.get(prompt);
    if (!task) throw new Error(`not a prompt of ${where}`);
    const r = task.check(completion);
    return r.correct && r.constraintsMet ? 1 : 0;
  };
}

let cached: ((p: string, c: string) => number) | null = null;

function demoWorldsVerifier(): (p: string, c: string) => number {
  const raw = process.env.INSTRUCTKIT_DEMO_SEED ?? '0';
  const seed = Number(raw);
  if (!Number.isInteger(seed) || seed < 0)
    throw new Error(`INSTRUCTKIT_DEMO_SEED must be the demo's --seed (an integer >= 0), got "${raw}"`);
  const tasks = DEMO_SIZES.flatMap((size) => {
    const world = buildWorld(seed, { sizes: DEMO_CONFIGS[size].world });
    return SPLITS.flatMap((s) => world[s]);
  });
  return worldVerifier(tasks, `the demo world of seed ${seed} (set INSTRUCTKIT_DEMO_SEED to the demo's --seed)`);
}

/** 1 for a correct answer in the asked format, 0 otherwise. */
export default function demoVerifier(prompt: string, completion: string): number {
  cached ??= demoWorldsVerifier();
  return cached(prompt, completion);
}
