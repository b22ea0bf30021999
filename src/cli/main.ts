#!/usr/bin/env node
// `instructkit <command> [options]`: each command lives in ./commands/<name>.js and is loaded only when run.
const COMMANDS: Record<string, string> = {
  demo: 'the InstructGPT paper in miniature, end to end (pretrain → SFT → RM → PPO/PPO-ptx → report)',
  ppo: 'RLHF step 3: PPO / PPO-ptx of an SFT policy against a reward, KL-penalised to the SFT model',
  bench: 'engine benchmark (matmul GFLOPS, training tok/s); --vs-torch compares with PyTorch',
  sft: 'supervised fine-tuning on demonstrations (InstructGPT step 1)',
  rm: 'reward model training on rankings or pairs (InstructGPT step 2)',
  dpo: 'Direct Preference Optimization of a policy on pairs or rankings (no reward model)',
  grpo: 'GRPO / RLOO: G samples per prompt, group advantages, rewards from a reward model and/or a verifier module',
  pretrain: 'train a GPT-2 or Llama model (and a BPE tokenizer) from scratch on plain-text corpora',
  sample: 'continue a prompt with a saved model, streaming the tokens',
  export: 'write a model as GGUF (llama.cpp, Ollama, LM Studio) or as safetensors in another dtype (bf16)',
  serve: 'labeling app, chat playground and HTTP API on 127.0.0.1 (--port, --db, --admin-password)',
  worker: 'runs the training jobs queued from the app (--db, --models), one at a time',
  db: 'db copy --from labels.sqlite --to postgres://…: move the labels between SQLite and PostgreSQL, verified',
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, what]) => `  ${name.padEnd(10)} ${what}`);
  return `usage: instructkit <command> [options]\n\ncommands:\n${rows.join('\n')}\n\nRun instructkit <command> --help for its options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  if (!(name in COMMANDS)) {
    console.error(`instructkit: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  // The demo's models are small, so its kernels are short and OpenMP's workers wait often. libgomp's default is to
  // spin for a long while first, which takes the core from any busy neighbour: beside one busy process the demo's
  // pretraining took 72 s instead of 42 s, and on a quiet machine short spins cost nothing. libgomp reads this when
  // the native addon loads, which the command's import below does.
  if (name === 'demo') process.env.GOMP_SPINCOUNT ??= '1000';
  const mod = (await import(`./commands/${name}.js`)) as { run: (args: string[]) => Promise<number> | number };
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    console.error(`instructkit: ${err.message}`);
    if (process.env.INSTRUCTKIT_DEBUG) console.error(err.stack);
    process.exitCode = 1;
  },
);
