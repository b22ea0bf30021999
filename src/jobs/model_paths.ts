/**
 * Where the registry's model folders are. A folder inside the shared models folder (a job's output, or one an admin
 * put there) is recorded relative to it, as job folders are: each process (API server, workers) names that folder
 * for its own machine (`--models`), so machines may mount it at different places. A folder elsewhere keeps its
 * absolute path, and must then be at that path on every machine that loads it.
 */
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';

const real = (path: string) => (existsSync(path) ? realpathSync(path) : resolve(path));

/** `path` relative to `root` ('/'-separated) when inside it, else null. */
function inside(root: string, path: string): string | null {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel)
    ? rel.split(sep).join('/')
    : null;
}

/**
 * How the registry records `dir`: relative to `modelsDir` when inside it, else absolute. Inside as written (a link
 * in the models folder to a folder elsewhere is still in it), or through symbolic links (the folder reached by
 * another name of the models folder).
 */
export function registryPath(modelsDir: string | undefined, dir: string): string {
  const path = resolve(dir);
  if (modelsDir === undefined) return path;
  return inside(resolve(modelsDir), path) ?? inside(real(modelsDir), real(path)) ?? path;
}

/** The folder a registry path names on this machine. */
export function localPath(modelsDir: string | undefined, path: string): string {
  if (isAbsolute(path)) return path;
  if (modelsDir === undefined)
    throw new Error(`${path} is inside the shared models folder: start this process with --models DIR`);
  return resolve(modelsDir, path);
}
