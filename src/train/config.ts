// Typed run configs: defaults merged with a JSON or YAML file and command-line overrides, checked field by field,
// printed at the start of a run and saved beside its checkpoints.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** Reads a JSON or YAML config file (by extension; .yml/.yaml are YAML) into a plain object. */
export function readConfigFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new Error(`${path}: config file not found`);
  const text = readFileSync(path, 'utf8');
  let value: unknown;
  try {
    value = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: cannot parse (${(e as Error).message})`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${path}: must hold an object`);
  return value as Record<string, unknown>;
}

/**
 * Overlays `overrides` on `defaults`, checking that every key is known and of the default's type.
 * `source` names where the overrides came from in errors.
 */
export function mergeConfig<T extends object>(defaults: T, overrides: Record<string, unknown>, source: string): T {
  const out: Record<string, unknown> = { ...(defaults as object) };
  const known = defaults as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (!(key in known))
      throw new Error(`${source}: unknown field "${key}" (known: ${Object.keys(known).sort().join(', ')})`);
    const want = known[key];
    const ok =
      want === null || value === null || (Array.isArray(want) ? Array.isArray(value) : typeof value === typeof want);
    if (!ok)
      throw new Error(
        `${source}: field "${key}" must be ${Array.isArray(want) ? 'an array' : `a ${typeof want}`}, got ${JSON.stringify(value)}`,
      );
    out[key] = value;
  }
  return out as T;
}

/** Writes config.json into the run folder (created if needed) and returns its path. */
export function saveRunConfig(dir: string, name: string, config: object): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);
  return path;
}

export function printConfig(title: string, config: object): void {
  console.error(`${title}:`);
  for (const [k, v] of Object.entries(config)) console.error(`  ${k.padEnd(22)} ${JSON.stringify(v)}`);
}
