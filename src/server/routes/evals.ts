/**
 * Admin: blind A/B evaluations between model versions on held-out prompts, their win rates with 95 % intervals,
 * the Bradley–Terry / Elo table across every version, the paper's Figure 1 against a baseline version, and the
 * chat comparisons (reported apart: other prompts, other people).
 */
import { eloRatings, headToHead, type Outcome, winRateOf } from '../../rlhf/index.js';
import { abCandidates, type EvalRow, StoreError } from '../../store/index.js';
import { fail, type RouteContext } from '../context.js';
import { responses as R } from '../responses.js';

export function evalRoutes(ctx: RouteContext): void {
  const { app, store, S, source, user, modelNames } = ctx;

  // The paper's baseline is SFT: by default the newest SFT version in the registry (one with results, else the
  // most compared version).
  const baselineOf = async (q: { baseline?: string }) => ({
    wanted: q.baseline,
    preferred: (await store.models.list())
      .filter((m) => m.kind === 'sft')
      .map((m) => m.name)
      .reverse(),
  });

  const withResult = async (e: EvalRow) => ({
    ...e,
    result: winRateOf(headToHead(await store.evals.outcomes(e.id), e.modelA, e.modelB)),
    agreement: await store.evals.agreement(e.id),
  });

  app.post(
    '/api/admin/evals',
    { config: { auth: 'admin' }, schema: { body: S.CreateEval, response: { 201: R.CreatedEval } } },
    async (req, reply) => {
      const { modelA, modelB, labelers = 1 } = req.body;
      if (modelA === modelB) fail(422, 'invalid', 'an eval compares two different models: modelA and modelB');
      const known = await modelNames();
      for (const m of [modelA, modelB]) {
        if (!known.includes(m)) fail(422, 'invalid', `no model "${m}"; known: ${known.join(', ') || 'none'}`);
      }
      const prompts = req.body.prompts
        ? await Promise.all(req.body.prompts.map(async (id) => ({ id, prompt: await store.prompts.get(id) })))
        : (await store.prompts.list({ split: 'heldout', limit: 10_000, offset: 0 })).prompts.map((p) => ({
            id: p.id,
            prompt: p,
          }));
      if (prompts.length === 0) fail(422, 'invalid', 'there are no held-out prompts: add prompts with split "heldout"');
      for (const { id, prompt } of prompts) {
        if (!prompt) fail(422, 'invalid', `prompts: no prompt ${id}`);
        // Evaluation answers come only from the held-out group, on prompts no training data was drawn from.
        if (prompt.split !== 'heldout') {
          fail(422, 'invalid', `prompts: prompt ${id} is in the training split; evals use held-out prompts only`);
        }
      }
      // An A/B task of this pair on a prompt already exists (an earlier eval, or the admin's): reused, not relabeled.
      const existing = await store.tasks.existing(
        'ab',
        prompts.map((p) => p.id),
        [modelA, modelB],
      );
      // Sampled first (outside the transaction), then stored in one. A prompt on which the two versions keep giving
      // the same or an empty answer has nothing to compare: it is left out and reported, the eval made of the rest.
      const plans: { promptId: number; a: string; b: string }[] = [];
      const dropped: { promptId: number; message: string }[] = [];
      for (const { id, prompt } of prompts) {
        if (existing.has(id)) continue;
        try {
          const [a, b] = await abCandidates(source(modelA), source(modelB), prompt!.text);
          plans.push({ promptId: id, a, b });
        } catch (e) {
          dropped.push({ promptId: id, message: (e as Error).message });
        }
      }
      if (plans.length === 0 && existing.size === 0) {
        throw new StoreError(
          'invalid',
          `no eval created: none of the ${prompts.length} prompt(s) gave two answers to compare`,
          dropped,
        );
      }
      const id = await store.tx(async (s) => {
        const taskIds = [...existing.values()];
        for (const p of plans) {
          const responses = [
            { text: p.a, model: modelA },
            { text: p.b, model: modelB },
          ];
          const setId = await s.prompts.addCandidateSet(p.promptId, responses, false);
          // Which answer a labeler sees on the left is drawn per assignment and recorded (assignments.swapped).
          taskIds.push(await s.tasks.create({ kind: 'ab', promptId: p.promptId, setId, target: labelers }));
        }
        return s.evals.create({ modelA, modelB, createdBy: user(req).id, taskIds, labelers });
      });
      return reply.status(201).send({ id, tasks: existing.size + plans.length, reused: existing.size, dropped });
    },
  );

  app.get('/api/admin/evals', { config: { auth: 'admin' }, schema: { response: { 200: R.Evals } } }, async () => ({
    evals: await Promise.all((await store.evals.list()).map(withResult)),
  }));

  app.get(
    '/api/admin/evals/:id',
    { config: { auth: 'admin' }, schema: { params: S.IdParam, response: { 200: R.Eval } } },
    async (req) => ({ eval: await withResult(await store.evals.get(req.params.id)) }),
  );

  app.get(
    '/api/admin/evals/ratings',
    { config: { auth: 'admin' }, schema: { querystring: S.BaselineQuery, response: { 200: R.EvalRatings } } },
    async (req) => ({
      ...ratings(await store.evals.heldoutOutcomes(), await store.evals.chatOutcomes(), await baselineOf(req.query)),
      chatSameModel: await store.evals.chatSameModelCount(),
    }),
  );

  // The paper's Figure 1 for the admin's own versions, drawn as the run reports draw it (an <img> in the app).
  app.get(
    '/api/admin/evals/figure.svg',
    { config: { auth: 'admin' }, schema: { querystring: S.BaselineQuery } },
    async (req, reply) => {
      const r = ratings(await store.evals.heldoutOutcomes(), [], await baselineOf(req.query));
      // ECharts loads on first use only: most server starts never draw a chart.
      const { intervalBarChart } = await import('../../report/charts.js');
      const svg = intervalBarChart(
        r.baseline ? `Win rate against ${r.baseline} (held-out labelers, held-out prompts)` : 'No A/B results yet',
        r.vsBaseline.map((w) => ({ label: w.model, value: w.winRate, lo: w.lo, hi: w.hi })),
        { yName: 'win rate', reference: 0.5, percent: true },
      );
      return reply.header('content-type', 'image/svg+xml; charset=utf-8').send(svg);
    },
  );
}

/** The Elo table, each version's win rate against the baseline, and the chat pairs' win rates. */
function ratings(heldout: Outcome[], chat: Outcome[], choice: { wanted?: string; preferred: string[] }) {
  const { wanted } = choice;
  const games = new Map<string, number>();
  for (const o of heldout) for (const m of [o.a, o.b]) games.set(m, (games.get(m) ?? 0) + 1);
  const models = [...games.keys()].sort();
  const mostCompared = [...games].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))[0]?.[0] ?? null;
  const baseline = wanted ?? choice.preferred.find((m) => games.has(m)) ?? mostCompared;
  if (wanted && !games.has(wanted)) {
    throw new StoreError('invalid', `baseline: no held-out A/B results for "${wanted}"; rated: ${models.join(', ')}`);
  }
  const vsBaseline = baseline
    ? models
        .filter((m) => m !== baseline)
        .map((m) => ({ model: m, ...winRateOf(headToHead(heldout, m, baseline)) }))
        .filter((w) => w.n > 0)
    : [];
  const pairs = new Map<string, [string, string]>();
  for (const o of chat) {
    const [x, y] = [o.a, o.b].sort();
    pairs.set(`${x}\u0000${y}`, [x, y]);
  }
  return {
    baseline,
    elo: eloRatings(heldout),
    vsBaseline,
    chat: [...pairs.values()].map(([x, y]) => ({ modelA: x, modelB: y, ...winRateOf(headToHead(chat, x, y)) })),
  };
}
