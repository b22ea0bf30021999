/**
 * Serves the built web UI (web/dist) from the API server: hashed assets under /assets/ are cached for a year,
 * everything else is revalidated; any other GET that is not an API path falls back to index.html so client routes
 * (/admin, /label, /chat, ...) load the app. Paths are resolved inside the root only.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
};

/** The app's CSP: same-origin script, style and fetch only; no inline script, no framing. */
export const APP_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** web/dist beside the package root (this file is dist/src/server/static.js or src/server/static.ts). */
export function defaultWebRoot(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../../../web/dist', '../../web/dist']) {
    const p = resolve(here, up);
    if (existsSync(join(p, 'index.html'))) return p;
  }
  return undefined;
}

export async function registerStatic(app: FastifyInstance, webRoot: string): Promise<void> {
  const root = resolve(webRoot);
  const indexPath = join(root, 'index.html');
  if (!existsSync(indexPath)) throw new Error(`webRoot ${root} has no index.html (run npm run build:web)`);

  const handler = async (
    req: { url: string },
    reply: {
      status(n: number): unknown;
      header(k: string, v: string): unknown;
      send(b: unknown): unknown;
    },
  ) => {
    const path = decodeURIComponent(req.url.split('?')[0]);
    if (path === '/api' || path.startsWith('/api/')) {
      reply.status(404);
      return reply.send({ error: 'not_found', message: 'no such route' });
    }
    const file = resolve(root, `.${path}`);
    let target = indexPath;
    if (file.startsWith(root + sep) && !path.endsWith('/')) {
      const st = await stat(file).catch(() => null);
      if (st?.isFile()) target = file;
      else if (extname(path) !== '') {
        // A missing asset is a 404, not the app: a stale tab asking for an old chunk should fail loudly.
        reply.status(404);
        return reply.send({ error: 'not_found', message: 'no such file' });
      }
    }
    const body = await readFile(target);
    reply.header('content-type', TYPES[extname(target)] ?? 'application/octet-stream');
    reply.header('content-security-policy', APP_CSP);
    reply.header(
      'cache-control',
      target.startsWith(join(root, 'assets') + sep) ? 'public, max-age=31536000, immutable' : 'no-cache',
    );
    return reply.send(body);
  };
  app.get('/', { config: { auth: 'public' } }, handler);
  app.get('/*', { config: { auth: 'public' } }, handler);
}
