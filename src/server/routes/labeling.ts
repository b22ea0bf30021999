/** Labelers: the screening test, the next task, and submissions (idempotent). */
import { fail, type RouteContext } from '../context.js';
import { responses as R } from '../responses.js';

export function labelingRoutes(ctx: RouteContext): void {
  const { app, store, S, random, user, settings: settingsOf, idempotent } = ctx;
  const Idem = { headers: S.IdempotencyHeaders };

  app.get(
    '/api/screening',
    { config: { auth: 'labeler' }, schema: { response: { 200: R.ScreeningState } } },
    async (req) => {
      const settings = await settingsOf(req);
      const passed = user(req).screeningPassed;
      const made = await store.gold.attempts(user(req).id);
      const max = settings.screeningMaxAttempts;
      const attemptsLeft = max > 0 ? Math.max(0, max - made) : null;
      return {
        required: settings.screeningRequired,
        passed,
        attemptsLeft,
        items: passed || attemptsLeft === 0 ? [] : await store.gold.screeningItems(),
      };
    },
  );

  app.post(
    '/api/screening/submit',
    {
      config: { auth: 'labeler' },
      schema: { body: S.ScreeningAnswers, ...Idem, response: { 200: R.ScreeningResult } },
    },
    async (req, reply) => {
      const settings = await settingsOf(req);
      return idempotent(req, reply, 'screening', (s) =>
        s.gold.submitScreening(user(req).id, req.body.answers, {
          threshold: settings.screeningPassThreshold,
          maxAttempts: settings.screeningMaxAttempts,
        }),
      );
    },
  );

  app.post(
    '/api/tasks/next',
    { config: { auth: 'labeler' }, schema: { response: { 200: R.NextTask } } },
    async (req) => {
      const u = user(req);
      const settings = await settingsOf(req);
      if (settings.screeningRequired && !u.screeningPassed) {
        fail(403, 'screening_required', 'pass the screening test before real tasks');
      }
      const timeoutMs = settings.assignmentTimeoutMinutes * 60_000;
      return { assignment: await store.tasks.next(u, { random, timeoutMs, goldRate: settings.goldRate }) };
    },
  );

  app.get(
    '/api/assignments/:id',
    { config: { auth: 'labeler' }, schema: { params: S.IdParam, response: { 200: R.Assignment } } },
    async (req) => ({
      assignment: await store.tasks.view(req.params.id, user(req).id),
    }),
  );

  app.post(
    '/api/assignments/:id/submit',
    {
      config: { auth: 'labeler' },
      schema: { params: S.IdParam, body: S.Submit, ...Idem, response: { 200: R.SubmitResult } },
    },
    async (req, reply) =>
      idempotent(req, reply, `assignment:${req.params.id}`, (s) =>
        s.submissions.submit(req.params.id, user(req).id, {
          ...req.body,
          flags: req.body.flags as Record<string, number[]> | undefined,
        }),
      ),
  );
}
