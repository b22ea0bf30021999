/**
 * Read-only view of a run's report folder (what `instructkit demo` writes to DIR/report): GET /report/ is its
 * index.html, GET /report/<file> a file beside it (the chart PNGs). Admins only: it shows held-out prompts. Files
 * resolve inside the folder only; the page has no script, so its CSP allows inline styles and same-origin images.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
};

export async function registerReport(app: FastifyInstance, reportDir: string): Promise<void> {
  const root = resolve(reportDir);
  if (!existsSync(root)) throw new Error(`reportDir ${root}: folder not found (run instructkit demo first)`);
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const rel = (req.params as { '*'?: string })['*'] ?? '';
    const file = resolve(root, rel === '' ? 'index.html' : rel);
    const type = TYPES[extname(file)];
    const st = file.startsWith(root + sep) && type ? await stat(file).catch(() => null) : null;
    if (!st?.isFile()) return reply.status(404).send({ error: 'not_found', message: 'no such report file' });
    reply.header('content-type', type);
    reply.header('content-security-policy', REPORT_CSP);
    reply.header('cache-control', 'no-cache');
    return reply.send(await readFile(file));
  };
  app.get('/report', { config: { auth: 'admin' } }, (_req, reply) => reply.redirect('/report/'));
  app.get('/report/*', { config: { auth: 'admin' } }, handler);
}
