/** Admin: JSONL import (all-or-nothing) and export in the formats of DESIGN.md. */
import {
  EXPORT_KINDS,
  type ExportKind,
  formatLineError,
  IMPORT_KINDS,
  type ImportKind,
  parseJsonl,
  type Split,
  toJsonl,
} from '../../store/index.js';
import { fail, type RouteContext } from '../context.js';
import { responses as R } from '../responses.js';

export function dataRoutes(ctx: RouteContext): void {
  const { app, store, S, maxTextChars } = ctx;

  app.post(
    '/api/admin/import/:kind',
    { config: { auth: 'admin' }, schema: { params: S.KindParam, response: { 200: R.Imported, 422: R.InvalidJsonl } } },
    async (req, reply) => {
      const kind = req.params.kind as ImportKind;
      if (!IMPORT_KINDS.includes(kind)) fail(404, 'not_found', `import kinds: ${IMPORT_KINDS.join(', ')}`);
      if (typeof req.body !== 'string') fail(415, 'unsupported_media_type', 'send JSONL as application/x-ndjson');
      const file = typeof req.headers['x-filename'] === 'string' ? req.headers['x-filename'].slice(0, 200) : 'upload';
      const settings = await store.settings.get();
      const parsed = parseJsonl(
        kind,
        req.body,
        {
          maxTextChars,
          minK: kind === 'rankings' || kind === 'gold' ? 2 : 1,
          maxK: Math.max(9, settings.k),
        },
        file,
      );
      if (parsed.errors.length > 0) {
        return reply.status(422).send({
          error: 'invalid_jsonl',
          message: `${parsed.errors.length} bad line(s); nothing imported`,
          details: parsed.errors.slice(0, 100).map((e) => ({ ...e, text: formatLineError(e) })),
        });
      }
      const r = parsed.records;
      const n = await {
        prompts: () => store.importPrompts(r as never),
        candidates: () => store.importCandidates(r as never),
        demonstrations: () => store.importDemonstrations(r as never),
        rankings: () => store.importRankings(r as never),
        pairwise: () => store.importPairwise(r as never),
        eval: () => store.importEval(r as never),
        gold: () => store.importGold(r as never),
      }[kind]();
      return { imported: n };
    },
  );

  app.get(
    '/api/admin/export/:kind',
    { config: { auth: 'admin' }, schema: { params: S.KindParam, querystring: S.ExportQuery } },
    async (req, reply) => {
      const kind = req.params.kind as ExportKind;
      if (!EXPORT_KINDS.includes(kind)) fail(404, 'not_found', `export kinds: ${EXPORT_KINDS.join(', ')}`);
      const split: Split = req.query.split ?? 'training';
      const include = (req.query.include ?? 'rankings,comparisons').split(',');
      const records = await {
        prompts: () => store.exportPrompts(split),
        demonstrations: () => store.exportDemonstrations(split),
        rankings: () => store.exportRankings(split),
        pairwise: () =>
          store.exportPairwise(split, {
            rankings: include.includes('rankings'),
            comparisons: include.includes('comparisons'),
          }),
        eval: () => store.exportEval(split),
      }[kind]();
      reply.header('content-type', 'application/x-ndjson; charset=utf-8');
      reply.header('content-disposition', `attachment; filename="${kind}-${split}.jsonl"`);
      return toJsonl(records as object[]);
    },
  );
}
