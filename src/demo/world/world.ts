/**
 * The world's prompt splits: SFT, RM, PPO and evaluation, with no prompt in two splits. Training splits use
 * training phrasings only; part of the evaluation split uses phrasings no training split has seen.
 */
import { Rng } from '../../tensor/random.js';
import { abstains } from './checker.js';
import { pick, shuffled } from './random.js';
import { generateTask, type Task } from './tasks.js';

export type SplitName = 'sft' | 'rm' | 'ppo' | 'eval';
export const SPLITS: readonly SplitName[] = ['sft', 'rm', 'ppo', 'eval'];

export interface WorldOptions {
  /** Prompts per split (defaults: sft 800, rm 400, ppo 400, eval 200). */
  sizes?: Partial<Record<SplitName, number>>;
  /** Fraction of evaluation prompts in held-out phrasings (default 0.5). */
  evalHeldoutFraction?: number;
  /** Probability that a task carries a format constraint (default 0.35). */
  constraintRate?: number;
  /**
   * Share of prompts about a town that does not exist (default 0.12). Evaluation asks about names that no training
   * split uses.
   */
  unanswerableRate?: number;
}

export type World = Record<SplitName, Task[]> & { seed: number };

export const DEFAULT_SIZES: Record<SplitName, number> = { sft: 800, rm: 400, ppo: 400, eval: 200 };

/** Builds the four splits from a seed; the same seed and options give the same tasks. */
export function buildWorld(seed: number, opts: WorldOptions = {}): World {
  const sizes = { ...DEFAULT_SIZES, ...opts.sizes };
  const fraction = opts.evalHeldoutFraction ?? 0.5;
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`buildWorld: evalHeldoutFraction must be in [0, 1]`);
  for (const s of SPLITS) {
    if (!Number.isInteger(sizes[s]) || sizes[s] < 0) throw new Error(`buildWorld: sizes.${s} must be an integer ≥ 0`);
  }
  const unanswerableRate = opts.unanswerableRate ?? 0.12;
  if (!(unanswerableRate >= 0 && unanswerableRate <= 1))
    throw new Error(`buildWorld: unanswerableRate must be in [0, 1]`);
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const draw = (n: number, phrasing: 'train' | 'heldout', unknownNames: 'train' | 'heldout' = 'train'): Task[] => {
    const out: Task[] = [];
    let misses = 0;
    while (out.length < n) {
      const t = generateTask(rng, { phrasing, constraintRate: opts.constraintRate, unanswerableRate, unknownNames });
      if (seen.has(t.prompt)) {
        // The world is finite; asking for more distinct prompts than it holds must fail, not spin.
        if (++misses > 5000)
          throw new Error(`buildWorld: the world holds too few distinct ${phrasing} prompts for the sizes asked`);
        continue;
      }
      misses = 0;
      seen.add(t.prompt);
      out.push(t);
    }
    return out;
  };
  // Evaluation first, so its held-out share does not depend on the training sizes.
  const heldout = Math.round(sizes.eval * fraction);
  const evalTasks = shuffled(rng, [
    ...draw(heldout, 'heldout', 'heldout'),
    ...draw(sizes.eval - heldout, 'train', 'heldout'),
  ]);
  return {
    seed,
    eval: evalTasks,
    sft: draw(sizes.sft, 'train'),
    rm: draw(sizes.rm, 'train'),
    ppo: draw(sizes.ppo, 'train'),
  };
}

/** Looks tasks up by prompt (how generated responses find their checker). */
export function tasksByPrompt(tasks: readonly Task[]): Map<string, Task> {
  return new Map(tasks.map((t) => [t.prompt, t]));
}

/** Stop strings for sampling from a few-shot prompt: the answer ends at a blank line or the next question. */
export const FEW_SHOT_STOP = ['\n\n', '\nQ:'];

/**
 * A plain-text few-shot prompt for the "prompted base" baseline: solved examples, then the question, ending at
 * "A:" so the base model continues with an answer.
 */
export function fewShotPrompt(task: Task, examples: readonly Task[]): string {
  const solved = examples.map((e) => `Q: ${e.prompt}\nA: ${e.reference}\n\n`).join('');
  return `${solved}Q: ${task.prompt}\nA:`;
}

/** Picks `shots` examples for a task from a training pool: same kind where possible, else same family. */
export function fewShotExamples(task: Task, pool: readonly Task[], rng: Rng, shots = 2): Task[] {
  const others = pool.filter((t) => t.prompt !== task.prompt);
  const sameKind = others.filter((t) => t.kind === task.kind);
  const sameFamily = others.filter((t) => t.family === task.family);
  const from = sameKind.length >= shots ? sameKind : sameFamily.length >= shots ? sameFamily : others;
  if (from.length < shots) throw new Error(`fewShotExamples: pool holds ${from.length} tasks, need ${shots}`);
  const out: Task[] = [];
  const left = from.slice();
  while (out.length < shots) {
    const t = pick(rng, left);
    left.splice(left.indexOf(t), 1);
    out.push(t);
  }
  return out;
}

export interface AnswerStats {
  /** Fraction of answers with the right content (on a question about nothing: saying so). */
  correct: number;
  /** Fraction that obey the task's format constraint (and are not empty). */
  constraintsMet: number;
  /** Fraction both right and in format. */
  both: number;
  /** Mean answer length in characters. */
  meanChars: number;
  n: number;
  /** On unanswerable prompts: the share that say they do not know, and the share that invent an answer. */
  abstain: number;
  hallucinate: number;
  /** On answerable prompts: the share that say they do not know. */
  overAbstain: number;
  /** Unanswerable prompts among the n. */
  unanswerable: number;
}

/** Objective scores of answers to tasks (what the world's checkers say, with no labeler involved). */
export function answerStats(tasks: readonly Task[], answers: readonly string[]): AnswerStats {
  if (tasks.length !== answers.length)
    throw new Error(`answerStats: ${tasks.length} tasks but ${answers.length} answers`);
  let correct = 0;
  let met = 0;
  let both = 0;
  let chars = 0;
  let unanswerable = 0;
  let abstained = 0;
  let invented = 0;
  let overAbstained = 0;
  tasks.forEach((t, i) => {
    const r = t.check(answers[i]);
    if (r.correct) correct++;
    if (r.constraintsMet) met++;
    if (r.correct && r.constraintsMet) both++;
    chars += answers[i].length;
    const says = abstains(answers[i]);
    if (t.answerable) {
      if (says) overAbstained++;
      return;
    }
    unanswerable++;
    if (says) abstained++;
    if (r.attempted && !r.correct) invented++;
  });
  const n = tasks.length || 1;
  const answerable = tasks.length - unanswerable || 1;
  return {
    correct: correct / n,
    constraintsMet: met / n,
    both: both / n,
    meanChars: chars / n,
    n: tasks.length,
    abstain: abstained / (unanswerable || 1),
    hallucinate: invented / (unanswerable || 1),
    overAbstain: overAbstained / answerable,
    unanswerable,
  };
}
