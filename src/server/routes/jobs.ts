/**
 * Training jobs: queue one (config checked by the trainer's schema, data snapshotted), watch it (state, progress,
 * metrics, log tail), cancel it. The training itself runs in a worker process (`instructkit worker`), never here.
 */
import { formGroups, JOB_KINDS } from '../../jobs/kinds.js';
import { enqueueJob } from '../../jobs/queue.js';
import type { Job, JobKind, JobSummary } from '../../store/index.js';
import { fail, type RouteContext } from '../context.js';
import { responses as R } from '../responses.js';

/** Which metrics.jsonl series each chart draws (TRL's names: train/loss, policy/loss, objective/rlhf_reward, ...). */
export const CHART_METRICS = {
  loss: /(^|\/)loss$/,
  reward: /(^|\/)(reward|rlhf_reward|scores|margins|accuracy|accuracies)$/,
};

const row = ({ config, dir, ptx, worker, heartbeatAt, modelId, ...rest }: JobSummary) => ({
  ...rest,
  model: modelId,
});
const detail = ({ metrics, log, ...j }: Job) => ({ ...row(j), config: j.config, ptx: j.ptx, metrics, log });

export function jobRoutes(ctx: RouteContext): void {
  const { app, store, S, opts } = ctx;

  app.get(
    '/api/admin/jobs/kinds',
    { config: { auth: 'admin' }, schema: { response: { 200: R.JobKinds } } },
    async () => ({
      kinds: Object.entries(JOB_KINDS).map(([kind, k]) => ({
        kind,
        data: k.data,
        needsRewardModel: k.needsRewardModel,
        schema: k.spec.schema as Record<string, unknown>,
        groups: formGroups(kind as JobKind),
      })),
    }),
  );

  app.get('/api/admin/jobs', { config: { auth: 'admin' }, schema: { response: { 200: R.Jobs } } }, async () => ({
    jobs: (await store.jobs.list()).map(row),
  }));

  app.post(
    '/api/admin/jobs',
    { config: { auth: 'admin' }, schema: { body: S.CreateJob, response: { 201: R.JobId } } },
    async (req, reply) => {
      if (!opts.jobsDir) fail(503, 'no_workers', 'this server was started without a models folder for jobs (--models)');
      const job = await enqueueJob(store, opts.jobsDir, req.body, ctx.user(req).id);
      return reply.status(201).send({ id: job.id });
    },
  );

  app.get(
    '/api/admin/jobs/:id',
    { config: { auth: 'admin' }, schema: { params: S.IdParam, response: { 200: R.Job } } },
    async (req) => ({ job: detail(await store.jobs.get(req.params.id)) }),
  );

  // Loss or reward curves as the run report draws them (ECharts → SVG on the server), for the Train screen's <img>.
  app.get(
    '/api/admin/jobs/:id/chart.svg',
    { config: { auth: 'admin' }, schema: { params: S.IdParam, querystring: S.JobChartQuery } },
    async (req, reply) => {
      const job = await store.jobs.get(req.params.id);
      const { lineChart } = await import('../../report/charts.js');
      const of = req.query.of;
      const names = [...new Set(job.metrics.flatMap(Object.keys))].filter((k) => CHART_METRICS[of].test(k));
      const series = names.map((name) => ({
        name,
        points: job.metrics
          .filter((r) => typeof r[name] === 'number')
          .map((r) => [Number(r.step), r[name] as number] as [number, number]),
      }));
      const chart = lineChart(`job ${job.id} (${job.kind}): ${of}`, series, { xName: 'step', yName: of });
      return reply.type('image/svg+xml').send(chart);
    },
  );

  app.post(
    '/api/admin/jobs/:id/cancel',
    { config: { auth: 'admin' }, schema: { params: S.IdParam, response: { 200: R.Job } } },
    async (req) => ({ job: detail(await store.jobs.cancel(req.params.id)) }),
  );
}
