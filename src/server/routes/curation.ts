/**
 * Curation: the review queue (submitted work, accept / reject with a reason; labelers' reports), editing and
 * archiving prompts, tasks and gold items, and the labeler's side: guidelines, skip, "report this prompt".
 * The rules live in store/curation.ts.
 */
import type { RouteContext } from '../context.js';
import { responses as R } from '../responses.js';

export function curationRoutes(ctx: RouteContext): void {
  const { app, store, S, user, settings, idempotent } = ctx;
  const admin = { auth: 'admin' } as const;
  const Idem = { headers: S.IdempotencyHeaders };

  app.get(
    '/api/admin/submissions',
    { config: admin, schema: { querystring: S.SubmissionQuery, response: { 200: R.Submissions } } },
    async (req) => store.curation.submissions(req.query),
  );
  app.post(
    '/api/admin/submissions/:id/review',
    { config: admin, schema: { params: S.IdParam, body: S.ReviewBody, response: { 200: R.Submission } } },
    async (req) => ({
      submission: await store.curation.review(req.params.id, user(req).id, req.body.decision, req.body.reason),
    }),
  );

  app.get(
    '/api/admin/reports',
    { config: admin, schema: { querystring: S.ReportQuery, response: { 200: R.Reports } } },
    async (req) => ({ reports: await store.curation.reports(req.query.state) }),
  );
  app.post(
    '/api/admin/reports/:id/resolve',
    { config: admin, schema: { params: S.IdParam, body: S.ResolveReport, response: { 200: R.Updated } } },
    async (req) => {
      await store.curation.resolveReport(req.params.id, user(req).id, req.body.action);
      return { id: req.params.id };
    },
  );

  app.patch(
    '/api/admin/prompts/:id',
    { config: admin, schema: { params: S.IdParam, body: S.PatchPrompt, response: { 200: R.Updated } } },
    async (req) => {
      const { archived, ...edit } = req.body;
      await store.tx(async (s) => {
        if (Object.keys(edit).length > 0) await s.curation.editPrompt(req.params.id, edit);
        if (archived !== undefined) await s.curation.archivePrompt(req.params.id, archived);
      });
      return { id: req.params.id };
    },
  );
  app.patch(
    '/api/admin/tasks/:id',
    { config: admin, schema: { params: S.IdParam, body: S.PatchTask, response: { 200: R.Updated } } },
    async (req) => {
      await store.curation.editTask(req.params.id, req.body);
      return { id: req.params.id };
    },
  );
  app.patch(
    '/api/admin/gold/:id',
    { config: admin, schema: { params: S.IdParam, body: S.PatchGold, response: { 200: R.Updated } } },
    async (req) => {
      await store.curation.editGold(req.params.id, req.body);
      return { id: req.params.id };
    },
  );

  app.get('/api/guidelines', { config: { auth: 'any' }, schema: { response: { 200: R.Guidelines } } }, async (req) => ({
    guidelines: (await settings(req)).guidelines,
  }));
  app.post(
    '/api/assignments/:id/skip',
    { config: { auth: 'labeler' }, schema: { params: S.IdParam, ...Idem, response: { 200: R.Skipped } } },
    async (req, reply) =>
      idempotent(req, reply, `skip:${req.params.id}`, async (s) => {
        await s.curation.skip(req.params.id, user(req).id);
        return { assignmentId: req.params.id };
      }),
  );
  app.post(
    '/api/assignments/:id/report',
    {
      config: { auth: 'labeler' },
      schema: { params: S.IdParam, body: S.ReportPrompt, ...Idem, response: { 200: R.Reported } },
    },
    async (req, reply) =>
      idempotent(req, reply, `report:${req.params.id}`, async (s) => ({
        reportId: await s.curation.report(req.params.id, user(req).id, req.body.reason),
      })),
  );
}
