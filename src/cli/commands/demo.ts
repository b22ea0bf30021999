// instructkit demo: the whole InstructGPT pipeline in miniature, ending in report/index.html and one JSON line.
import { parseArgs } from 'node:util';
import { DEMO_SIZES, type DemoSize, runDemo } from '../../demo/demo.js';

const HELP = `usage: instructkit demo [--size small|tiny|headline] [--out runs/demo] [--seed N] [--fresh]

Runs the InstructGPT paper in miniature on a world of checkable tasks with simulated labelers: pretrain a base
model → demonstrations → SFT → K samples per prompt (6 tiny, 9 small) ranked by labelers → reward model → PPO and
PPO-ptx, DPO on the same rankings, GRPO with the world's answer checker as reward → correctness, honesty and win
rates against SFT judged by three held-out labeler pools on held-out prompts. Labels go through the SQLite store in the
run folder. Writes DIR/report/index.html (open it from disk, or instructkit serve --report DIR/report) and prints
one JSON line of results last.

  --size S    small (default; about 15 minutes on 2 cores), tiny (a few minutes, for CI) or headline (small, then
              a base model ~20× bigger pretrained on the same prose and prompted few-shot, judged against the
              small PPO-ptx model by the held-out pools: the paper's headline; up to 45 minutes; reuses small's
              stages in the same --out)
  --out DIR   run folder (default runs/demo); a second run reuses every stage whose inputs did not change
  --seed N    world, labelers and training seed (default 0)
  --fresh     redo every stage`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      size: { type: 'string', default: 'small' },
      out: { type: 'string', default: 'runs/demo' },
      seed: { type: 'string', default: '0' },
      fresh: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!DEMO_SIZES.includes(values.size as DemoSize)) {
    console.error(`instructkit demo: --size must be one of ${DEMO_SIZES.join(', ')}, got "${values.size}"\n\n${HELP}`);
    return 2;
  }
  const seed = Number(values.seed);
  const summary = await runDemo({ size: values.size as DemoSize, out: values.out, seed, fresh: values.fresh });
  console.error(`report: ${summary.report}`);
  console.log(JSON.stringify(summary));
  return 0;
}
