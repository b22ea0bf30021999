// Numeric command-line flags: parseArgs gives strings; a malformed number is an error naming the flag.
export function numberFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag}: expected a number, got "${value}"`);
  return n;
}
