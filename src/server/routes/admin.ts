/** Admin: people, groups, settings, prompts, tasks, gold items, the screening test and the dashboard. */
import { abCandidates, DEFAULT_SETTINGS, distinctCandidates, parseJsonl, StoreError } from '../../store/index.js';
import { hashPassword } from '../auth.js';
import { fail, type RouteContext } from '../context.js';
import { responses as R } from '../responses.js';

/** A batch of tasks this large refreshes the planner's statistics (see Tasks.refreshStatistics). */
const BULK_TASKS = 1000;

export function adminRoutes(ctx: RouteContext): void {
  const { app, store, opts, S, maxTextChars, chatModel, source, modelNames, random } = ctx;

  app.get('/api/admin/users', { config: { auth: 'admin' }, schema: { response: { 200: R.Users } } }, async () => ({
    users: await store.users.list(),
  }));

  app.post(
    '/api/admin/users',
    { config: { auth: 'admin' }, schema: { body: S.CreateUser, response: { 201: R.User } } },
    async (req, reply) => {
      const b = req.body;
      if (b.role === 'admin' && b.group !== undefined) fail(422, 'invalid', 'admins do not belong to a group');
      const created = await store.users.create({
        username: b.username,
        passwordHash: await hashPassword(b.password, opts.passwordCost),
        role: b.role,
        group: b.group,
      });
      return reply.status(201).send({ user: created });
    },
  );

  app.patch(
    '/api/admin/users/:id',
    { config: { auth: 'admin' }, schema: { params: S.IdParam, body: S.PatchUser, response: { 200: R.User } } },
    async (req) => {
      const { password, ...rest } = req.body;
      const passwordHash = password === undefined ? undefined : await hashPassword(password, opts.passwordCost);
      return { user: await store.users.update(req.params.id, { ...rest, passwordHash }, req.session!.id) };
    },
  );

  app.get('/api/admin/groups', { config: { auth: 'admin' }, schema: { response: { 200: R.Groups } } }, async () => ({
    groups: await store.users.listGroups(),
  }));
  app.post(
    '/api/admin/groups',
    { config: { auth: 'admin' }, schema: { body: S.CreateGroup, response: { 201: R.Group } } },
    async (req, reply) =>
      reply.status(201).send({ group: await store.users.createGroup(req.body.name, req.body.split) }),
  );

  app.get(
    '/api/admin/settings',
    { config: { auth: 'admin' }, schema: { response: { 200: R.Settings } } },
    async () => ({ settings: await store.settings.get() }),
  );
  app.put(
    '/api/admin/settings',
    { config: { auth: 'admin' }, schema: { body: S.Settings, response: { 200: R.Settings } } },
    async (req) => {
      const { candidateModel, ...patch } = req.body;
      // The single candidate source of earlier releases is a list of one.
      if (candidateModel !== undefined) {
        if (patch.candidateModels) fail(422, 'invalid', 'give candidateModels (a list) or candidateModel, not both');
        patch.candidateModels = [candidateModel];
      }
      const current = await store.settings.get();
      const known = new Set([...(await modelNames()), DEFAULT_SETTINGS.candidateModels[0], ...current.candidateModels]);
      const unknownSources = (patch.candidateModels ?? []).filter((n) => !known.has(n));
      if (unknownSources.length > 0) {
        fail(
          422,
          'invalid',
          `candidateModels: ${unknownSources.join(', ')} unknown; known: ${[...known].sort().join(', ')} (a served or registered version, or a model name of imported candidates)`,
        );
      }
      const unknown = (patch.chatModels ?? []).filter((n) => !opts.servedModels?.has(n));
      if (unknown.length > 0) {
        const served = opts.servedModels?.names().join(', ') || 'none (start the server with --model DIR)';
        fail(422, 'invalid', `chatModels: ${unknown.join(', ')} not served; served: ${served}`);
      }
      return { settings: await store.settings.update(patch) };
    },
  );

  app.get(
    '/api/admin/models',
    { config: { auth: 'admin' }, schema: { response: { 200: R.AdminModels } } },
    async () => ({
      models: await modelNames(),
      chatModel: chatModel.name,
      // Versions served side by side: their weights' size and whether a sampling worker holds them now.
      served: opts.servedModels?.status().map(({ dir: _dir, ...s }) => s) ?? [],
      serveMemory: opts.servedModels?.budgetBytes ?? null,
    }),
  );

  app.get(
    '/api/admin/prompts',
    { config: { auth: 'admin' }, schema: { querystring: S.ListQuery, response: { 200: R.Prompts } } },
    async (req) => store.prompts.list(req.query),
  );
  app.post(
    '/api/admin/prompts',
    { config: { auth: 'admin' }, schema: { body: S.AddPrompts, response: { 201: R.Ids } } },
    async (req, reply) => reply.status(201).send({ ids: await store.prompts.add(req.body.prompts, 'typed') }),
  );

  app.get(
    '/api/admin/tasks',
    { config: { auth: 'admin' }, schema: { querystring: S.TaskQuery, response: { 200: R.Tasks } } },
    async (req) => store.tasks.list(req.query),
  );

  app.post(
    '/api/admin/tasks',
    { config: { auth: 'admin' }, schema: { body: S.CreateTasks, response: { 201: R.CreatedTasks } } },
    async (req, reply) => {
      const { kind, promptIds, modelA, modelB } = req.body;
      const settings = await store.settings.get();
      await ctx.refreshModels();
      if (kind === 'ab' && (!modelA || !modelB || modelA === modelB)) {
        fail(422, 'invalid', 'an A/B task needs two different models: modelA and modelB');
      }
      // A prompt that already has this kind of task is skipped and reported, never labeled twice by accident.
      const models: [string, string] | undefined = kind === 'ab' ? [modelA!, modelB!] : undefined;
      const existing = await store.tasks.existing(kind, promptIds, models);
      const skipped = [...existing].map(([promptId, taskId]) => ({
        promptId,
        taskId,
        message: `prompt ${promptId} already has ${kind} task ${taskId}`,
      }));
      // Generate everything first (outside the transaction), then store all tasks or none.
      const plans: { promptId: number; responses: { text: string; model: string }[] | null }[] = [];
      const errors: { promptId: number; message: string }[] = [];
      for (const promptId of new Set(promptIds)) {
        if (existing.has(promptId)) continue;
        const prompt = await store.prompts.get(promptId);
        if (!prompt) {
          errors.push({ promptId, message: 'no such prompt' });
          continue;
        }
        try {
          if (kind === 'demonstration') plans.push({ promptId, responses: null });
          else if (kind === 'ranking') {
            const sources = settings.candidateModels.map((name) => ({ name, source: source(name) }));
            const candidates = await distinctCandidates(sources, prompt.text, settings.k, { turn: promptId });
            // Several versions: the order is drawn, so that no version keeps the first places (position bias).
            plans.push({ promptId, responses: sources.length > 1 ? shuffled(candidates, random) : candidates });
          } else {
            const [a, b] = await abCandidates(source(modelA!), source(modelB!), prompt.text);
            plans.push({
              promptId,
              responses: [
                { text: a, model: modelA! },
                { text: b, model: modelB! },
              ],
            });
          }
        } catch (e) {
          errors.push({ promptId, message: (e as Error).message });
        }
      }
      if (errors.length > 0) {
        throw new StoreError('invalid', 'no tasks created', errors);
      }
      const ids = await store.tx(async (s) => {
        const out: number[] = [];
        for (let i = 0; i < plans.length; i++) {
          const p = plans[i];
          // Spread the overlapping share evenly over the batch.
          const overlapping = Math.floor((i + 1) * settings.overlap) > Math.floor(i * settings.overlap);
          const setId = p.responses ? await s.prompts.addCandidateSet(p.promptId, p.responses, false) : null;
          out.push(
            await s.tasks.create({
              kind,
              promptId: p.promptId,
              setId,
              target: overlapping ? settings.overlapLabelers : 1,
            }),
          );
        }
        return out;
      });
      if (ids.length >= BULK_TASKS) await store.tasks.refreshStatistics();
      return reply.status(201).send({ ids, skipped });
    },
  );

  app.get('/api/admin/gold', { config: { auth: 'admin' }, schema: { response: { 200: R.Gold } } }, async () => ({
    gold: await store.gold.list(),
  }));
  app.post(
    '/api/admin/gold',
    { config: { auth: 'admin' }, schema: { body: S.AddGold, response: { 201: R.Ids } } },
    async (req, reply) => {
      const [rec] = parseJsonl('gold', JSON.stringify(req.body), { maxTextChars }).records;
      if (!rec) {
        const { errors } = parseJsonl('gold', JSON.stringify(req.body), { maxTextChars });
        fail(422, 'invalid', errors[0]?.message ?? 'invalid gold item');
      }
      return reply.status(201).send({ ids: await store.gold.add([rec]) });
    },
  );

  app.get(
    '/api/admin/screening',
    { config: { auth: 'admin' }, schema: { response: { 200: R.AdminScreening } } },
    async () => {
      const settings = await store.settings.get();
      return {
        items: (await store.gold.list()).filter((g) => g.inScreening),
        passThreshold: settings.screeningPassThreshold,
        required: settings.screeningRequired,
      };
    },
  );
  app.put(
    '/api/admin/screening',
    { config: { auth: 'admin' }, schema: { body: S.SetScreening, response: { 200: R.ScreeningSet } } },
    async (req) => {
      await store.gold.setScreening(req.body.goldIds);
      if (req.body.passThreshold !== undefined) {
        await store.settings.update({ screeningPassThreshold: req.body.passThreshold });
      }
      return { ok: true, goldIds: req.body.goldIds };
    },
  );

  app.get('/api/admin/dashboard', { config: { auth: 'admin' }, schema: { response: { 200: R.Dashboard } } }, async () =>
    store.stats.dashboard(),
  );
}

/** A copy in random order (Fisher–Yates). */
function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
