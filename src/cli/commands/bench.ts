// instructkit bench: runs the engine benchmark of bench/bench.ts.
export async function run(args: string[]): Promise<number> {
  process.argv = [process.argv[0], 'bench', ...args];
  await import('../../../bench/bench.js');
  return 0;
}
