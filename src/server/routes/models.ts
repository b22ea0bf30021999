/** The model registry: every version with its lineage, and registering an existing model folder. */
import { resolve } from 'node:path';
import { registerFolder } from '../../jobs/queue.js';
import type { RouteContext } from '../context.js';
import { responses as R } from '../responses.js';

export function modelRoutes(ctx: RouteContext): void {
  const { app, store, S, opts } = ctx;

  app.get('/api/models', { config: { auth: 'admin' }, schema: { response: { 200: R.Models } } }, async () => ({
    models: await store.models.list(),
    modelsDir: opts.jobsDir === undefined ? null : resolve(opts.jobsDir),
  }));

  app.post(
    '/api/admin/models',
    { config: { auth: 'admin' }, schema: { body: S.RegisterModel, response: { 200: R.Model, 201: R.Model } } },
    async (req, reply) => {
      const { model, created } = await registerFolder(store, req.body.path, {
        name: req.body.name,
        modelsDir: opts.jobsDir,
      });
      return reply.status(created ? 201 : 200).send({ model });
    },
  );
}
