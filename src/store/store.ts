/**
 * The store: every query the server and trainers use. Written against Kysely only (no SQLite-specific SQL), so a
 * PostgreSQL dialect can be plugged into `Store` without touching callers.
 */
import type { ExpressionBuilder, Insertable, Kysely, Transaction } from 'kysely';
import { pairwiseAgreement } from './agreement.js';
import { StoreError } from './errors.js';
import type {
  CandidateRecord,
  DemonstrationRecord,
  EvalRecord,
  PairwiseRecord,
  PromptRecord,
  RankingRecord,
} from './jsonl.js';
import { rankingLabelError } from './jsonl.js';
import type { Choice, Database, Role, Split, TaskKind, User } from './schema.js';
import { DEFAULT_SETTINGS, type Settings } from './settings.js';

export interface PublicUser {
  id: number;
  username: string;
  role: Role;
  group: string | null;
  split: Split | null;
  screeningPassed: boolean;
  disabled: boolean;
}

export interface SessionWithUser {
  id: string;
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
  user: PublicUser;
}

export interface RankingLabel {
  ranking: number[];
  likert?: number[] | null;
  flags?: Record<string, number[]> | null;
}

/** What a labeler sees for one assignment: never gold, other labelers' work, or model names for A/B. */
export type AssignmentView = {
  id: number;
  /** `expired`: the deadline passed and the task went back to the pool (see `openRowFor` for late submits). */
  status: 'open' | 'done' | 'expired';
  /** Submission deadline (epoch ms), or null when assignments do not expire. */
  expiresAt: number | null;
  prompt: string;
} & ({ kind: 'demonstration' } | { kind: 'ranking'; responses: string[] } | { kind: 'ab'; a: string; b: string });

export interface SubmitResult {
  assignmentId: number;
  kind: TaskKind;
  storedId: number;
}

export interface ScreeningItem {
  goldId: number;
  prompt: string;
  responses: string[];
}

export interface ConversationSummary {
  id: number;
  title: string;
  updatedAt: number;
  messages: number;
}

export interface Conversation {
  id: number;
  title: string;
  updatedAt: number;
  messages: { role: 'user' | 'assistant'; content: string }[];
  /** Two candidate replies shown and not yet chosen between; the conversation continues after the choice. */
  pendingPair: { pairId: number; a: string; b: string } | null;
}

export interface Dashboard {
  datasets: {
    prompts: { training: number; heldout: number };
    tasks: { open: number; done: number; total: number };
    demonstrations: number;
    rankings: number;
    pairwiseFromRankings: number;
    comparisons: { eval: number; chat: number; pairwise: number };
    goldItems: number;
  };
  agreement: { overlappingTasks: number; labelerPairs: number; meanPairwiseAgreement: number | null };
  labelers: {
    id: number;
    username: string;
    group: string | null;
    completed: number;
    perHour: number | null;
    lastHour: number;
    /** Mean pairwise agreement with gold over the latest screening test's items and gold met in live work. */
    goldAgreement: number | null;
    /** Gold items met in live ranking work. */
    goldChecks: number;
    screeningPassed: boolean;
    peerAgreement: number | null;
  }[];
}

/** Source of the prompts behind gold tasks: they are not the admin's prompts and are never exported. */
const GOLD_SOURCE = 'gold';

const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));

export class Store {
  constructor(
    readonly db: Kysely<Database>,
    readonly now: () => number = Date.now,
    /** Frees what the database holds besides its connection (SQLite's checkpoint thread); awaited by `close`. */
    private readonly release: () => Promise<void> = async () => {},
  ) {}

  /** Runs `fn` in one transaction (a nested call reuses the outer one). */
  async tx<T>(fn: (s: Store) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return fn(this);
    return this.db.transaction().execute((trx: Transaction<Database>) => fn(new Store(trx, this.now)));
  }

  async close(): Promise<void> {
    await this.db.destroy();
    await this.release();
  }

  // ---------------------------------------------------------------- users, groups, sessions

  private userQuery() {
    return this.db
      .selectFrom('users')
      .leftJoin('groups', 'groups.id', 'users.group_id')
      .select([
        'users.id',
        'users.username',
        'users.role',
        'users.screening_passed',
        'users.disabled',
        'groups.name as group',
        'groups.split as split',
      ]);
  }

  private static publicUser(r: {
    id: number;
    username: string;
    role: Role;
    screening_passed: number;
    disabled: number;
    group: string | null;
    split: Split | null;
  }): PublicUser {
    return {
      id: r.id,
      username: r.username,
      role: r.role,
      group: r.group,
      split: r.split,
      screeningPassed: r.screening_passed === 1,
      disabled: r.disabled === 1,
    };
  }

  async createUser(u: { username: string; passwordHash: string; role: Role; group?: string }): Promise<PublicUser> {
    return this.tx(async (s) => {
      let groupId: number | null = null;
      if (u.role === 'labeler') {
        const g = await s.db
          .selectFrom('groups')
          .select('id')
          .where('name', '=', u.group ?? 'training')
          .executeTakeFirst();
        if (!g) throw new StoreError('invalid', `unknown group "${u.group}"`);
        groupId = g.id;
      }
      const exists = await s.db.selectFrom('users').select('id').where('username', '=', u.username).executeTakeFirst();
      if (exists) throw new StoreError('conflict', `user "${u.username}" already exists`);
      const { id } = await s.db
        .insertInto('users')
        .values({
          username: u.username,
          password_hash: u.passwordHash,
          role: u.role,
          group_id: groupId,
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return (await s.getUser(id))!;
    });
  }

  async getUser(id: number): Promise<PublicUser | undefined> {
    const r = await this.userQuery().where('users.id', '=', id).executeTakeFirst();
    return r && Store.publicUser(r);
  }

  async getUserForLogin(username: string): Promise<(User & { publicUser: PublicUser }) | undefined> {
    const u = await this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    if (!u) return undefined;
    return { ...u, publicUser: (await this.getUser(u.id))! };
  }

  async listUsers(): Promise<PublicUser[]> {
    return (await this.userQuery().orderBy('users.id').execute()).map(Store.publicUser);
  }

  async updateUser(
    id: number,
    patch: { group?: string; screeningPassed?: boolean; disabled?: boolean; passwordHash?: string },
  ): Promise<PublicUser> {
    return this.tx(async (s) => {
      const user = await s.getUser(id);
      if (!user) throw new StoreError('not_found', `no user ${id}`);
      const values: Partial<{ group_id: number; screening_passed: number; disabled: number; password_hash: string }> =
        {};
      if (patch.group !== undefined) {
        if (user.role !== 'labeler') throw new StoreError('invalid', 'only labelers belong to a group');
        const g = await s.db.selectFrom('groups').select('id').where('name', '=', patch.group).executeTakeFirst();
        if (!g) throw new StoreError('invalid', `unknown group "${patch.group}"`);
        values.group_id = g.id;
      }
      if (patch.screeningPassed !== undefined) values.screening_passed = patch.screeningPassed ? 1 : 0;
      if (patch.disabled !== undefined) values.disabled = patch.disabled ? 1 : 0;
      if (patch.passwordHash !== undefined) values.password_hash = patch.passwordHash;
      if (Object.keys(values).length > 0) await s.db.updateTable('users').set(values).where('id', '=', id).execute();
      if (patch.disabled) await s.db.deleteFrom('sessions').where('user_id', '=', id).execute();
      return (await s.getUser(id))!;
    });
  }

  async listGroups(): Promise<{ id: number; name: string; split: Split }[]> {
    return this.db.selectFrom('groups').selectAll().orderBy('id').execute();
  }

  async createGroup(name: string, split: Split): Promise<{ id: number; name: string; split: Split }> {
    return this.tx(async (s) => {
      const exists = await s.db.selectFrom('groups').select('id').where('name', '=', name).executeTakeFirst();
      if (exists) throw new StoreError('conflict', `group "${name}" already exists`);
      const { id } = await s.db.insertInto('groups').values({ name, split }).returning('id').executeTakeFirstOrThrow();
      return { id, name, split };
    });
  }

  /** `expiresAt` is when the session runs out unless it is extended (see `extendSession`). */
  async createSession(s: { id: string; userId: number; csrfToken: string; expiresAt: number }): Promise<void> {
    await this.db
      .insertInto('sessions')
      .values({
        id: s.id,
        user_id: s.userId,
        csrf_token: s.csrfToken,
        created_at: this.now(),
        expires_at: s.expiresAt,
      })
      .execute();
  }

  /** The session and its user; `expired` when it exists but has run out (it is then deleted). */
  async getSession(id: string): Promise<SessionWithUser | 'expired' | undefined> {
    // One query per request: the session with its user and group.
    const row = await this.userQuery()
      .innerJoin('sessions', 'sessions.user_id', 'users.id')
      .select([
        'sessions.id as session_id',
        'sessions.csrf_token',
        'sessions.created_at as session_created_at',
        'sessions.expires_at',
      ])
      .where('sessions.id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    if (row.expires_at <= this.now()) {
      await this.deleteSession(id);
      return 'expired';
    }
    const user = Store.publicUser(row);
    if (user.disabled) return undefined;
    return {
      id: row.session_id,
      csrfToken: row.csrf_token,
      createdAt: row.session_created_at,
      expiresAt: row.expires_at,
      user,
    };
  }

  /** Moves a live session's expiry later (never earlier). */
  async extendSession(id: string, expiresAt: number): Promise<void> {
    await this.db
      .updateTable('sessions')
      .set({ expires_at: expiresAt })
      .where('id', '=', id)
      .where('expires_at', '<', expiresAt)
      .execute();
  }

  async deleteSession(id: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id', '=', id).execute();
  }

  async deleteExpiredSessions(): Promise<number> {
    const r = await this.db.deleteFrom('sessions').where('expires_at', '<=', this.now()).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  // ---------------------------------------------------------------- settings

  async getSettings(): Promise<Settings> {
    const rows = await this.db.selectFrom('settings').selectAll().execute();
    const out: Settings = { ...DEFAULT_SETTINGS };
    for (const r of rows) {
      if (r.key in out) (out as unknown as Record<string, unknown>)[r.key] = JSON.parse(r.value);
    }
    return out;
  }

  async updateSettings(patch: Partial<Settings>): Promise<Settings> {
    return this.tx(async (s) => {
      for (const [key, value] of Object.entries(patch)) {
        if (value === undefined || !(key in DEFAULT_SETTINGS)) continue;
        await s.db
          .insertInto('settings')
          .values({ key, value: JSON.stringify(value) })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value: JSON.stringify(value) }))
          .execute();
      }
      return s.getSettings();
    });
  }

  // ---------------------------------------------------------------- prompts and candidates

  async addPrompts(prompts: { text: string; split?: Split }[], source: string): Promise<number[]> {
    return this.tx(async (s) => {
      const ids: number[] = [];
      for (const p of prompts) {
        const { id } = await s.db
          .insertInto('prompts')
          .values({ text: p.text, split: p.split ?? 'training', source, created_at: s.now() })
          .returning('id')
          .executeTakeFirstOrThrow();
        ids.push(id);
      }
      return ids;
    });
  }

  /** The existing prompt with this text and split, or a new one. */
  async promptId(text: string, split: Split, source: string): Promise<number> {
    const row = await this.db
      .selectFrom('prompts')
      .select('id')
      .where('text', '=', text)
      .where('split', '=', split)
      .where('source', '!=', GOLD_SOURCE)
      .orderBy('id')
      .executeTakeFirst();
    if (row) return row.id;
    return (await this.addPrompts([{ text, split }], source))[0];
  }

  async listPrompts(q: { split?: Split; limit: number; offset: number }) {
    let query = this.db
      .selectFrom('prompts')
      .select(['id', 'text', 'split', 'source', 'created_at'])
      .where('source', '!=', GOLD_SOURCE);
    if (q.split) query = query.where('split', '=', q.split);
    const rows = await query.orderBy('id').limit(q.limit).offset(q.offset).execute();
    let count = this.db
      .selectFrom('prompts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('source', '!=', GOLD_SOURCE);
    if (q.split) count = count.where('split', '=', q.split);
    const { n } = await count.executeTakeFirstOrThrow();
    return { total: Number(n), prompts: rows.map((r) => ({ ...r, createdAt: r.created_at, created_at: undefined })) };
  }

  async getPrompt(id: number) {
    return this.db.selectFrom('prompts').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async addCandidateSet(promptId: number, responses: { text: string; model: string }[], pooled: boolean) {
    return this.tx(async (s) => {
      const models = new Set(responses.map((r) => r.model));
      const { id } = await s.db
        .insertInto('candidate_sets')
        .values({
          prompt_id: promptId,
          model: models.size === 1 ? responses[0].model : 'mixed',
          pooled: pooled ? 1 : 0,
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      let idx = 0;
      for (const r of responses) {
        await s.db.insertInto('responses').values({ set_id: id, idx: idx++, text: r.text, model: r.model }).execute();
      }
      return id;
    });
  }

  /** Imported candidates (the pool) for a prompt text and model, oldest first; does not consume them. */
  async pooledCandidates(promptText: string, model: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('candidate_sets')
      .innerJoin('prompts', 'prompts.id', 'candidate_sets.prompt_id')
      .innerJoin('responses', 'responses.set_id', 'candidate_sets.id')
      .select(['responses.text'])
      .where('prompts.text', '=', promptText)
      .where('candidate_sets.model', '=', model)
      .where('candidate_sets.pooled', '=', 1)
      .orderBy('candidate_sets.id')
      .orderBy('responses.idx')
      .execute();
    return rows.map((r) => r.text);
  }

  /** Models that have imported candidates in the pool. */
  async pooledModels(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('candidate_sets')
      .select('model')
      .distinct()
      .where('pooled', '=', 1)
      .execute();
    return rows.map((r) => r.model);
  }

  async setResponses(setId: number): Promise<{ text: string; model: string }[]> {
    return this.db
      .selectFrom('responses')
      .select(['text', 'model'])
      .where('set_id', '=', setId)
      .orderBy('idx')
      .execute();
  }

  // ---------------------------------------------------------------- tasks and assignments

  async createTask(t: { kind: TaskKind; promptId: number; setId: number | null; target: number }): Promise<number> {
    const prompt = await this.getPrompt(t.promptId);
    if (!prompt) throw new StoreError('not_found', `no prompt ${t.promptId}`);
    const { id } = await this.db
      .insertInto('tasks')
      .values({
        kind: t.kind,
        prompt_id: t.promptId,
        set_id: t.setId,
        split: prompt.split,
        target: t.target,
        created_at: this.now(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  async listTasks(q: { limit: number; offset: number }) {
    const rows = await this.db
      .selectFrom('tasks')
      .innerJoin('prompts', 'prompts.id', 'tasks.prompt_id')
      .select((eb) => [
        'tasks.id',
        'tasks.kind',
        'tasks.split',
        'tasks.target',
        'tasks.created_at as createdAt',
        'prompts.text as prompt',
        eb
          .selectFrom('assignments')
          .select((e) => e.fn.countAll<number>().as('n'))
          .whereRef('assignments.task_id', '=', 'tasks.id')
          .where('assignments.status', '=', 'done')
          .as('done'),
        eb
          .selectFrom('assignments')
          .select((e) => e.fn.countAll<number>().as('n'))
          .whereRef('assignments.task_id', '=', 'tasks.id')
          .where('assignments.status', '=', 'open')
          .where('assignments.expired_at', 'is', null)
          .as('open'),
      ])
      .where('tasks.gold_id', 'is', null)
      .orderBy('tasks.id')
      .limit(q.limit)
      .offset(q.offset)
      .execute();
    const { n } = await this.db
      .selectFrom('tasks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('gold_id', 'is', null)
      .executeTakeFirstOrThrow();
    return { total: Number(n), tasks: rows.map((r) => ({ ...r, done: Number(r.done), open: Number(r.open) })) };
  }

  /**
   * The labeler's open assignment, or a new one: the oldest task of the labeler's split that still needs
   * labelers and that this labeler has never been given. Returns null when nothing is left. Overdue assignments
   * (anyone's) go back to the pool first.
   */
  async nextAssignment(
    user: PublicUser,
    opts: { random?: () => number; timeoutMs?: number; goldRate?: number } = {},
  ): Promise<AssignmentView | null> {
    if (user.role !== 'labeler' || !user.split) throw new StoreError('forbidden', 'only labelers in a group get tasks');
    const random = opts.random ?? Math.random;
    return this.tx(async (s) => {
      await s.releaseOverdueAssignments();
      const open = await s.db
        .selectFrom('assignments')
        .select('id')
        .where('user_id', '=', user.id)
        .where('status', '=', 'open')
        .where('expired_at', 'is', null)
        .orderBy('id')
        .limit(1)
        .executeTakeFirst();
      if (open) return s.assignmentView(open.id, user.id);
      const poolTask = await s.db
        .selectFrom('tasks')
        .select(['tasks.id', 'tasks.kind'])
        .where('tasks.split', '=', user.split!)
        // Spelled as in the partial index tasks_needing_labelers, so the planner walks only tasks with room.
        .where('tasks.assigned_count', '<', (eb) => eb.ref('tasks.target'))
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('assignments')
                .select('assignments.id')
                .whereRef('assignments.task_id', '=', 'tasks.id')
                .where('assignments.user_id', '=', user.id),
            ),
          ),
        )
        .orderBy('tasks.id')
        // Kysely's executeTakeFirst still reads every row; without the limit this evaluated all matching tasks.
        .limit(1)
        .executeTakeFirst();
      if (!poolTask) return null;
      // Gold only stands in for real ranking work, so it never keeps a labeler busy once the pool is empty.
      const mixGold = poolTask.kind === 'ranking' && random() < (opts.goldRate ?? 0);
      const task = (mixGold ? await s.unseenGoldTask(user.id) : undefined) ?? poolTask;
      const { id } = await s.db
        .insertInto('assignments')
        .values({
          task_id: task.id,
          user_id: user.id,
          status: 'open',
          swapped: task.kind === 'ab' && random() < 0.5 ? 1 : 0,
          created_at: s.now(),
          expires_at: opts.timeoutMs ? s.now() + opts.timeoutMs : null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await s.changeAssignedCount(task.id, +1);
      return s.assignmentView(id, user.id);
    });
  }

  /** The hidden ranking task of the oldest live gold item this labeler has not met (created on first use). */
  private async unseenGoldTask(userId: number): Promise<{ id: number; kind: TaskKind } | undefined> {
    const gold = await this.db
      .selectFrom('gold_items')
      .select(['id', 'prompt', 'responses'])
      // Screening items are known to the labeler already.
      .where('in_screening', '=', 0)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('tasks')
              .innerJoin('assignments', 'assignments.task_id', 'tasks.id')
              .select('assignments.id')
              .whereRef('tasks.gold_id', '=', 'gold_items.id')
              .where('assignments.user_id', '=', userId),
          ),
        ),
      )
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    if (!gold) return undefined;
    const existing = await this.db.selectFrom('tasks').select('id').where('gold_id', '=', gold.id).executeTakeFirst();
    if (existing) return { id: existing.id, kind: 'ranking' };
    const { id: promptId } = await this.db
      .insertInto('prompts')
      .values({ text: gold.prompt, split: 'training', source: GOLD_SOURCE, created_at: this.now() })
      .returning('id')
      .executeTakeFirstOrThrow();
    const setId = await this.addCandidateSet(
      promptId,
      (JSON.parse(gold.responses) as string[]).map((text) => ({ text, model: GOLD_SOURCE })),
      false,
    );
    const { id } = await this.db
      .insertInto('tasks')
      .values({
        kind: 'ranking',
        prompt_id: promptId,
        set_id: setId,
        split: 'training',
        target: 0,
        gold_id: gold.id,
        created_at: this.now(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id, kind: 'ranking' };
  }

  private async changeAssignedCount(taskId: number, by: 1 | -1) {
    await this.db
      .updateTable('tasks')
      .set((eb) => ({ assigned_count: eb('assigned_count', '+', by) }))
      .where('id', '=', taskId)
      .execute();
  }

  /** Takes back open assignments whose deadline has passed, so their tasks can go to other labelers. */
  async releaseOverdueAssignments(): Promise<number> {
    return this.tx(async (s) => {
      const now = s.now();
      // Two set-based statements, however many are overdue: each task gives back its overdue seats, then those
      // assignments are marked expired. The filter is spelled as in the partial index assignments_pending_deadline.
      const overdue = (eb: ExpressionBuilder<Database, 'assignments'>) =>
        eb.and([eb('status', '=', 'open'), eb('expired_at', 'is', null), eb('expires_at', '<=', now)]);
      await s.db
        .updateTable('tasks')
        .set((eb) => ({
          assigned_count: eb(
            'assigned_count',
            '-',
            eb
              .selectFrom('assignments')
              .select((a) => a.fn.countAll<number>().as('n'))
              .whereRef('assignments.task_id', '=', 'tasks.id')
              .where(overdue),
          ),
        }))
        .where('id', 'in', (eb) => eb.selectFrom('assignments').select('task_id').where(overdue))
        .execute();
      const expired = await s.db.updateTable('assignments').set({ expired_at: now }).where(overdue).executeTakeFirst();
      return Number(expired.numUpdatedRows);
    });
  }

  private async assignmentRow(assignmentId: number, userId: number) {
    const row = await this.db
      .selectFrom('assignments')
      .innerJoin('tasks', 'tasks.id', 'assignments.task_id')
      .innerJoin('prompts', 'prompts.id', 'tasks.prompt_id')
      .select([
        'assignments.id',
        'assignments.status',
        'assignments.swapped',
        'assignments.user_id',
        'assignments.expires_at',
        'assignments.expired_at',
        'tasks.id as task_id',
        'tasks.kind',
        'tasks.set_id',
        'tasks.prompt_id',
        'tasks.assigned_count',
        'tasks.target',
        'tasks.gold_id',
        'prompts.text as prompt',
      ])
      .where('assignments.id', '=', assignmentId)
      .executeTakeFirst();
    // Another labeler's assignment is reported as missing, never as forbidden, so ids reveal nothing.
    if (!row || row.user_id !== userId) throw new StoreError('not_found', `no assignment ${assignmentId}`);
    return row;
  }

  async assignmentView(assignmentId: number, userId: number): Promise<AssignmentView> {
    const row = await this.assignmentRow(assignmentId, userId);
    const status: AssignmentView['status'] = row.expired_at !== null ? 'expired' : row.status;
    const base = { id: row.id, status, expiresAt: row.expires_at, prompt: row.prompt };
    if (row.kind === 'demonstration') return { ...base, kind: 'demonstration' };
    const responses = (await this.setResponses(row.set_id!)).map((r) => r.text);
    if (row.kind === 'ranking') return { ...base, kind: 'ranking', responses };
    const [a, b] = row.swapped ? [responses[1], responses[0]] : [responses[0], responses[1]];
    return { ...base, kind: 'ab', a, b };
  }

  /**
   * The assignment, ready to take a submission. A late submission (after the task went back to the pool) is still
   * accepted while the task has room, and then takes its place again; once other labelers have filled the task it
   * is refused with `expired` (410) and nothing is stored.
   */
  private async openRowFor(assignmentId: number, userId: number, kind: TaskKind) {
    const row = await this.assignmentRow(assignmentId, userId);
    if (row.kind !== kind) throw new StoreError('invalid', `assignment ${assignmentId} is a ${row.kind} task`);
    if (row.status !== 'open') throw new StoreError('conflict', `assignment ${assignmentId} was already submitted`);
    if (row.expired_at !== null) {
      // Gold tasks have no capacity: every labeler may meet each one.
      const full = row.gold_id === null && row.assigned_count >= row.target;
      if (full) {
        throw new StoreError(
          'expired',
          `assignment ${assignmentId} passed its deadline and its task went to another labeler; nothing was stored — ask for a new task`,
        );
      }
      await this.db.updateTable('assignments').set({ expired_at: null }).where('id', '=', assignmentId).execute();
      await this.changeAssignedCount(row.task_id, +1);
    }
    return row;
  }

  private async finish(assignmentId: number) {
    const r = await this.db
      .updateTable('assignments')
      .set({ status: 'done', completed_at: this.now() })
      .where('id', '=', assignmentId)
      .where('status', '=', 'open')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1)
      throw new StoreError('conflict', `assignment ${assignmentId} was already submitted`);
  }

  async submitDemonstration(assignmentId: number, userId: number, completion: string): Promise<SubmitResult> {
    return this.tx(async (s) => {
      const row = await s.openRowFor(assignmentId, userId, 'demonstration');
      await s.finish(assignmentId);
      const { id } = await s.db
        .insertInto('demonstrations')
        .values({
          prompt_id: row.prompt_id,
          completion,
          assignment_id: assignmentId,
          user_id: userId,
          labeler: null,
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { assignmentId, kind: 'demonstration', storedId: id };
    });
  }

  async submitRanking(assignmentId: number, userId: number, label: RankingLabel): Promise<SubmitResult> {
    return this.tx(async (s) => {
      const row = await s.openRowFor(assignmentId, userId, 'ranking');
      const k = (await s.setResponses(row.set_id!)).length;
      const err = rankingLabelError(label, k);
      if (err) throw new StoreError('invalid', err);
      await s.finish(assignmentId);
      if (row.gold_id !== null) {
        // Answered like any ranking (the labeler cannot tell), scored against gold instead of stored for training.
        const gold = await s.db
          .selectFrom('gold_items')
          .select('ranking')
          .where('id', '=', row.gold_id)
          .executeTakeFirstOrThrow();
        const { id } = await s.db
          .insertInto('gold_answers')
          .values({
            gold_id: row.gold_id,
            user_id: userId,
            assignment_id: assignmentId,
            ranking: JSON.stringify(label.ranking),
            agreement: pairwiseAgreement(label.ranking, JSON.parse(gold.ranking)),
            created_at: s.now(),
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        return { assignmentId, kind: 'ranking', storedId: id };
      }
      const { id } = await s.db
        .insertInto('rankings')
        .values({
          prompt_id: row.prompt_id,
          set_id: row.set_id!,
          ranking: JSON.stringify(label.ranking),
          likert: json(label.likert),
          flags: json(label.flags),
          assignment_id: assignmentId,
          user_id: userId,
          labeler: null,
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { assignmentId, kind: 'ranking', storedId: id };
    });
  }

  /** `choice` is what the labeler saw ('a' = left); it is stored un-swapped, relative to the task's models. */
  async submitAB(assignmentId: number, userId: number, choice: Choice): Promise<SubmitResult> {
    return this.tx(async (s) => {
      const row = await s.openRowFor(assignmentId, userId, 'ab');
      const [ra, rb] = await s.setResponses(row.set_id!);
      const stored: Choice = row.swapped && choice !== 'tie' ? (choice === 'a' ? 'b' : 'a') : choice;
      await s.finish(assignmentId);
      const { id } = await s.db
        .insertInto('comparisons')
        .values({
          kind: 'eval',
          prompt: row.prompt,
          a_text: ra.text,
          b_text: rb.text,
          model_a: ra.model,
          model_b: rb.model,
          choice: stored,
          assignment_id: assignmentId,
          user_id: userId,
          labeler: null,
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { assignmentId, kind: 'ab', storedId: id };
    });
  }

  // ---------------------------------------------------------------- idempotency

  /**
   * Runs `fn` once per (user, key): a replay with the same body returns the stored response and stores nothing;
   * the same key with a different body is refused. Key and effects commit in one transaction, and the primary key
   * keeps a concurrent duplicate from committing.
   */
  async idempotent<T>(
    userId: number,
    key: string,
    route: string,
    bodyHash: string,
    fn: (s: Store) => Promise<{ status: number; body: T }>,
  ): Promise<{ status: number; body: T; replayed: boolean }> {
    return this.tx(async (s) => {
      const prior = await s.db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('user_id', '=', userId)
        .where('key', '=', key)
        .executeTakeFirst();
      if (prior) {
        if (prior.route !== route || prior.body_hash !== bodyHash) {
          throw new StoreError('conflict', 'this Idempotency-Key was already used for a different request');
        }
        return { status: prior.status, body: JSON.parse(prior.response) as T, replayed: true };
      }
      const r = await fn(s);
      await s.db
        .insertInto('idempotency_keys')
        .values({
          user_id: userId,
          key,
          route,
          body_hash: bodyHash,
          status: r.status,
          response: JSON.stringify(r.body),
          created_at: s.now(),
        })
        .execute();
      return { ...r, replayed: false };
    });
  }

  // ---------------------------------------------------------------- gold items and screening

  async addGoldItems(items: { prompt: string; responses: string[]; ranking: number[] }[]): Promise<number[]> {
    return this.tx(async (s) => {
      const ids: number[] = [];
      for (const g of items) {
        const { id } = await s.db
          .insertInto('gold_items')
          .values({
            prompt: g.prompt,
            responses: JSON.stringify(g.responses),
            ranking: JSON.stringify(g.ranking),
            created_at: s.now(),
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        ids.push(id);
      }
      return ids;
    });
  }

  async listGoldItems() {
    const rows = await this.db.selectFrom('gold_items').selectAll().orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      prompt: r.prompt,
      responses: JSON.parse(r.responses) as string[],
      ranking: JSON.parse(r.ranking) as number[],
      inScreening: r.in_screening === 1,
    }));
  }

  /** Replaces the screening test with these gold items. */
  async setScreening(goldIds: number[]): Promise<void> {
    await this.tx(async (s) => {
      const found = await s.db.selectFrom('gold_items').select('id').where('id', 'in', goldIds).execute();
      if (found.length !== new Set(goldIds).size) throw new StoreError('invalid', 'unknown gold item id');
      await s.db.updateTable('gold_items').set({ in_screening: 0 }).execute();
      await s.db.updateTable('gold_items').set({ in_screening: 1 }).where('id', 'in', goldIds).execute();
    });
  }

  /** The screening test as a labeler sees it: no gold rankings. */
  async screeningItems(): Promise<ScreeningItem[]> {
    return (await this.listGoldItems())
      .filter((g) => g.inScreening)
      .map((g) => ({ goldId: g.id, prompt: g.prompt, responses: g.responses }));
  }

  async submitScreening(
    userId: number,
    answers: { goldId: number; ranking: number[] }[],
    threshold: number,
  ): Promise<{ score: number; passed: boolean; resultId: number }> {
    return this.tx(async (s) => {
      const gold = (await s.listGoldItems()).filter((g) => g.inScreening);
      if (gold.length === 0) throw new StoreError('conflict', 'no screening test is set up');
      const byId = new Map(answers.map((a) => [a.goldId, a.ranking]));
      if (byId.size !== answers.length) throw new StoreError('invalid', 'each gold item may be answered once');
      let total = 0;
      for (const g of gold) {
        const r = byId.get(g.id);
        if (!r) throw new StoreError('invalid', `missing answer for gold item ${g.id}`);
        const err = rankingLabelError({ ranking: r }, g.responses.length);
        if (err) throw new StoreError('invalid', `gold item ${g.id}: ${err}`);
        total += pairwiseAgreement(r, g.ranking);
      }
      if (byId.size !== gold.length) throw new StoreError('invalid', 'answers name items outside the screening test');
      const score = total / gold.length;
      const passed = score >= threshold;
      const { id } = await s.db
        .insertInto('screening_results')
        .values({
          user_id: userId,
          score,
          passed: passed ? 1 : 0,
          answers: JSON.stringify(answers),
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      if (passed) await s.db.updateTable('users').set({ screening_passed: 1 }).where('id', '=', userId).execute();
      return { score, passed, resultId: id };
    });
  }

  // ---------------------------------------------------------------- chat history and comparisons

  async createConversation(userId: number, title: string): Promise<number> {
    const { id } = await this.db
      .insertInto('conversations')
      .values({ user_id: userId, title, created_at: this.now(), updated_at: this.now() })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  /** The user's conversations, most recently active first. */
  async listConversations(userId: number, limit = 100): Promise<ConversationSummary[]> {
    const rows = await this.db
      .selectFrom('conversations')
      .select((eb) => [
        'conversations.id',
        'conversations.title',
        'conversations.updated_at',
        eb
          .selectFrom('chat_messages')
          .select((e) => e.fn.countAll<number>().as('n'))
          .whereRef('chat_messages.conversation_id', '=', 'conversations.id')
          .as('messages'),
      ])
      .where('conversations.user_id', '=', userId)
      .orderBy('conversations.updated_at', 'desc')
      .orderBy('conversations.id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ id: r.id, title: r.title, updatedAt: r.updated_at, messages: Number(r.messages) }));
  }

  /** A conversation of this user with its messages and any comparison still waiting for a choice. */
  async conversation(id: number, userId: number): Promise<Conversation> {
    const c = await this.db.selectFrom('conversations').selectAll().where('id', '=', id).executeTakeFirst();
    // Someone else's conversation is reported as missing, like assignments.
    if (c?.user_id !== userId) throw new StoreError('not_found', `no conversation ${id}`);
    const messages = await this.db
      .selectFrom('chat_messages')
      .select(['role', 'content'])
      .where('conversation_id', '=', id)
      .orderBy('id')
      .execute();
    const pending = await this.db
      .selectFrom('comparisons')
      .select(['id', 'a_text', 'b_text'])
      .where('conversation_id', '=', id)
      .where('choice', 'is', null)
      .limit(1)
      .executeTakeFirst();
    return {
      id,
      title: c.title,
      updatedAt: c.updated_at,
      messages,
      pendingPair: pending ? { pairId: pending.id, a: pending.a_text, b: pending.b_text } : null,
    };
  }

  async addChatMessage(conversationId: number, role: 'user' | 'assistant', content: string): Promise<void> {
    await this.tx(async (s) => {
      await s.db
        .insertInto('chat_messages')
        .values({ conversation_id: conversationId, role, content, created_at: s.now() })
        .execute();
      await s.db.updateTable('conversations').set({ updated_at: s.now() }).where('id', '=', conversationId).execute();
    });
  }

  async openChatPair(
    userId: number,
    conversationId: number,
    pair: { prompt: string; a: string; b: string; model: string },
  ): Promise<number> {
    const { id } = await this.db
      .insertInto('comparisons')
      .values({
        kind: 'chat',
        prompt: pair.prompt,
        a_text: pair.a,
        b_text: pair.b,
        model_a: pair.model,
        model_b: pair.model,
        choice: null,
        assignment_id: null,
        user_id: userId,
        labeler: null,
        conversation_id: conversationId,
        created_at: this.now(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  /** Stores the choice; the chosen reply (A on a tie) continues the pair's conversation. */
  async chooseChatPair(pairId: number, userId: number, choice: Choice): Promise<void> {
    await this.tx(async (s) => {
      const row = await s.db
        .selectFrom('comparisons')
        .select(['id', 'user_id', 'choice', 'kind', 'a_text', 'b_text', 'conversation_id'])
        .where('id', '=', pairId)
        .executeTakeFirst();
      if (row?.kind !== 'chat' || row.user_id !== userId) throw new StoreError('not_found', `no chat pair ${pairId}`);
      if (row.choice !== null) throw new StoreError('conflict', `chat pair ${pairId} was already chosen`);
      await s.db.updateTable('comparisons').set({ choice }).where('id', '=', pairId).execute();
      if (row.conversation_id !== null) {
        await s.addChatMessage(row.conversation_id, 'assistant', choice === 'b' ? row.b_text : row.a_text);
      }
    });
  }

  /** Counts a chat reply and returns the new count (for "every Nth reply"). */
  async countChatReply(userId: number): Promise<number> {
    return this.tx(async (s) => {
      await s.db
        .updateTable('users')
        .set((eb) => ({ chat_replies: eb('chat_replies', '+', 1) }))
        .where('id', '=', userId)
        .execute();
      const r = await s.db
        .selectFrom('users')
        .select('chat_replies')
        .where('id', '=', userId)
        .executeTakeFirstOrThrow();
      return r.chat_replies;
    });
  }

  // ---------------------------------------------------------------- imports (all-or-nothing)

  async importPrompts(records: PromptRecord[], source = 'import'): Promise<number> {
    return (
      await this.addPrompts(
        records.map((r) => ({ text: r.prompt, split: r.split })),
        source,
      )
    ).length;
  }

  async importCandidates(records: CandidateRecord[]): Promise<number> {
    return this.tx(async (s) => {
      for (const r of records) {
        const pid = await s.promptId(r.prompt, r.split ?? 'training', 'import');
        const model = r.model ?? 'imported';
        await s.addCandidateSet(
          pid,
          r.responses.map((text) => ({ text, model })),
          true,
        );
      }
      return records.length;
    });
  }

  async importDemonstrations(records: DemonstrationRecord[]): Promise<number> {
    return this.tx(async (s) => {
      for (const r of records) {
        const pid = await s.promptId(r.prompt, r.split ?? 'training', 'import');
        await s.db
          .insertInto('demonstrations')
          .values({
            prompt_id: pid,
            completion: r.completion,
            assignment_id: null,
            user_id: null,
            labeler: null,
            created_at: s.now(),
          })
          .execute();
      }
      return records.length;
    });
  }

  async importRankings(records: RankingRecord[]): Promise<number> {
    return this.tx(async (s) => {
      for (const r of records) {
        const pid = await s.promptId(r.prompt, r.split ?? 'training', 'import');
        const setId = await s.addCandidateSet(
          pid,
          r.responses.map((text) => ({ text, model: 'imported' })),
          false,
        );
        await s.db
          .insertInto('rankings')
          .values({
            prompt_id: pid,
            set_id: setId,
            ranking: JSON.stringify(r.ranking),
            likert: json(r.likert),
            flags: json(r.flags),
            assignment_id: null,
            user_id: null,
            labeler: r.labeler ?? null,
            created_at: s.now(),
          })
          .execute();
      }
      return records.length;
    });
  }

  async importPairwise(records: PairwiseRecord[]): Promise<number> {
    return this.importComparisons(records, (r) => ({
      kind: 'pairwise',
      prompt: r.prompt,
      a_text: r.chosen,
      b_text: r.rejected,
      model_a: null,
      model_b: null,
      choice: 'a',
      labeler: null,
    }));
  }

  async importEval(records: EvalRecord[]): Promise<number> {
    return this.importComparisons(records, (r) => ({
      kind: 'eval',
      prompt: r.prompt,
      a_text: r.response_a,
      b_text: r.response_b,
      model_a: r.model_a,
      model_b: r.model_b,
      choice: r.winner,
      labeler: r.labeler ?? null,
    }));
  }

  // Imported comparisons belong to no assignment or user; one transaction for the whole file.
  private importComparisons<R>(
    records: R[],
    row: (r: R) => Omit<Insertable<Database['comparisons']>, 'assignment_id' | 'user_id' | 'created_at'>,
  ): Promise<number> {
    return this.tx(async (s) => {
      for (const r of records)
        await s.db
          .insertInto('comparisons')
          .values({ ...row(r), assignment_id: null, user_id: null, created_at: s.now() })
          .execute();
      return records.length;
    });
  }

  async importGold(records: RankingRecord[]): Promise<number> {
    return (await this.addGoldItems(records)).length;
  }

  // ---------------------------------------------------------------- exports

  async exportPrompts(split: Split): Promise<PromptRecord[]> {
    const rows = await this.db
      .selectFrom('prompts')
      .select('text')
      .where('split', '=', split)
      .where('source', '!=', GOLD_SOURCE)
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ prompt: r.text }));
  }

  async exportDemonstrations(split: Split): Promise<DemonstrationRecord[]> {
    const rows = await this.db
      .selectFrom('demonstrations')
      .innerJoin('prompts', 'prompts.id', 'demonstrations.prompt_id')
      .select(['prompts.text as prompt', 'demonstrations.completion'])
      .where('prompts.split', '=', split)
      .orderBy('demonstrations.id')
      .execute();
    return rows.map((r) => ({ prompt: r.prompt, completion: r.completion }));
  }

  async exportRankings(split: Split): Promise<RankingRecord[]> {
    const rows = await this.db
      .selectFrom('rankings')
      .innerJoin('prompts', 'prompts.id', 'rankings.prompt_id')
      .leftJoin('users', 'users.id', 'rankings.user_id')
      .select([
        'rankings.id',
        'rankings.set_id',
        'prompts.text as prompt',
        'rankings.ranking',
        'rankings.likert',
        'rankings.flags',
        'rankings.labeler',
        'users.username',
      ])
      .where('prompts.split', '=', split)
      .orderBy('rankings.id')
      .execute();
    const out: RankingRecord[] = [];
    for (const r of rows) {
      const rec: RankingRecord = {
        prompt: r.prompt,
        responses: (await this.setResponses(r.set_id)).map((x) => x.text),
        ranking: JSON.parse(r.ranking),
      };
      const labeler = r.labeler ?? r.username;
      if (labeler) rec.labeler = labeler;
      if (r.likert) rec.likert = JSON.parse(r.likert);
      if (r.flags) rec.flags = JSON.parse(r.flags);
      out.push(rec);
    }
    return out;
  }

  /**
   * Pairwise preferences: every (better, worse) pair from each ranking (the paper's K-choose-2 comparisons), then
   * decided chat and imported pairwise comparisons. Ties and eval A/B results are not included.
   */
  async exportPairwise(split: Split, include: { rankings: boolean; comparisons: boolean }): Promise<PairwiseRecord[]> {
    const out: PairwiseRecord[] = [];
    if (include.rankings) {
      for (const r of await this.exportRankings(split)) {
        for (let i = 0; i < r.ranking.length; i++) {
          for (let j = i + 1; j < r.ranking.length; j++) {
            out.push({ prompt: r.prompt, chosen: r.responses[r.ranking[i]], rejected: r.responses[r.ranking[j]] });
          }
        }
      }
    }
    // Comparisons carry no prompt split; they count as training data.
    if (include.comparisons && split === 'training') {
      const rows = await this.db
        .selectFrom('comparisons')
        .select(['prompt', 'a_text', 'b_text', 'choice'])
        .where('kind', 'in', ['chat', 'pairwise'])
        .where('choice', 'in', ['a', 'b'])
        .orderBy('id')
        .execute();
      for (const c of rows) {
        const [chosen, rejected] = c.choice === 'a' ? [c.a_text, c.b_text] : [c.b_text, c.a_text];
        out.push({ prompt: c.prompt, chosen, rejected });
      }
    }
    return out;
  }

  async exportEval(): Promise<EvalRecord[]> {
    const rows = await this.db
      .selectFrom('comparisons')
      .leftJoin('users', 'users.id', 'comparisons.user_id')
      .select([
        'comparisons.prompt',
        'comparisons.a_text',
        'comparisons.b_text',
        'comparisons.model_a',
        'comparisons.model_b',
        'comparisons.choice',
        'comparisons.labeler',
        'users.username',
      ])
      .where('comparisons.kind', '=', 'eval')
      .orderBy('comparisons.id')
      .execute();
    return rows.map((r) => {
      const rec: EvalRecord = {
        prompt: r.prompt,
        model_a: r.model_a ?? '',
        model_b: r.model_b ?? '',
        response_a: r.a_text,
        response_b: r.b_text,
        winner: r.choice ?? 'tie',
      };
      const labeler = r.labeler ?? r.username;
      if (labeler) rec.labeler = labeler;
      return rec;
    });
  }

  // ---------------------------------------------------------------- dashboards

  async dashboard(): Promise<Dashboard> {
    const count = async (table: keyof Database) =>
      Number(
        (
          await this.db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const promptsBySplit = await this.db
      .selectFrom('prompts')
      .select(['split', (eb) => eb.fn.countAll<number>().as('n')])
      .where('source', '!=', GOLD_SOURCE)
      .groupBy('split')
      .execute();
    const tasksBy = await this.db
      .selectFrom('assignments')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('expired_at', 'is', null)
      .groupBy('status')
      .execute();
    const compBy = await this.db
      .selectFrom('comparisons')
      .select(['kind', (eb) => eb.fn.countAll<number>().as('n')])
      .where('choice', 'is not', null)
      .groupBy('kind')
      .execute();
    const rankings = await this.db
      .selectFrom('rankings')
      .select(['assignment_id', 'user_id', 'set_id', 'ranking'])
      .execute();
    let pairwiseFromRankings = 0;
    for (const r of rankings) {
      const k = (JSON.parse(r.ranking) as number[]).length;
      pairwiseFromRankings += (k * (k - 1)) / 2;
    }

    // Inter-labeler agreement on tasks ranked by two or more labelers.
    const labeled = await this.db
      .selectFrom('rankings')
      .innerJoin('assignments', 'assignments.id', 'rankings.assignment_id')
      .select(['assignments.task_id', 'rankings.user_id', 'rankings.ranking'])
      .execute();
    const byTask = new Map<number, { user: number; ranking: number[] }[]>();
    for (const r of labeled) {
      const list = byTask.get(r.task_id) ?? [];
      list.push({ user: r.user_id!, ranking: JSON.parse(r.ranking) });
      byTask.set(r.task_id, list);
    }
    let overlappingTasks = 0;
    let pairs = 0;
    let agreeSum = 0;
    const peer = new Map<number, { sum: number; n: number }>();
    for (const list of byTask.values()) {
      if (list.length < 2) continue;
      overlappingTasks++;
      for (let i = 0; i < list.length; i++) {
        for (let j = i + 1; j < list.length; j++) {
          const a = pairwiseAgreement(list[i].ranking, list[j].ranking);
          pairs++;
          agreeSum += a;
          for (const u of [list[i].user, list[j].user]) {
            const p = peer.get(u) ?? { sum: 0, n: 0 };
            p.sum += a;
            p.n++;
            peer.set(u, p);
          }
        }
      }
    }

    const now = this.now();
    const done = await this.db
      .selectFrom('assignments')
      .select(['user_id', 'completed_at'])
      .where('status', '=', 'done')
      .execute();
    const perUser = new Map<number, number[]>();
    for (const d of done) {
      const l = perUser.get(d.user_id) ?? [];
      l.push(d.completed_at!);
      perUser.set(d.user_id, l);
    }
    // Agreement with gold per item answered: the items of the latest screening test, then gold met in live work.
    const screening = await this.db
      .selectFrom('screening_results')
      .select(['user_id', 'score', 'answers'])
      .orderBy('id', 'desc')
      .execute();
    const gold = new Map<number, { sum: number; items: number; live: number }>();
    for (const s of screening) {
      if (gold.has(s.user_id)) continue;
      const items = (JSON.parse(s.answers) as unknown[]).length;
      gold.set(s.user_id, { sum: s.score * items, items, live: 0 });
    }
    const liveGold = await this.db.selectFrom('gold_answers').select(['user_id', 'agreement']).execute();
    for (const a of liveGold) {
      const g = gold.get(a.user_id) ?? { sum: 0, items: 0, live: 0 };
      gold.set(a.user_id, { sum: g.sum + a.agreement, items: g.items + 1, live: g.live + 1 });
    }

    const labelers = (await this.listUsers())
      .filter((u) => u.role === 'labeler')
      .map((u) => {
        const times = perUser.get(u.id) ?? [];
        const first = Math.min(...times);
        const hours = times.length > 1 ? (Math.max(...times) - first) / 3_600_000 : 0;
        const p = peer.get(u.id);
        const g = gold.get(u.id);
        return {
          id: u.id,
          username: u.username,
          group: u.group,
          completed: times.length,
          perHour: hours > 0 ? times.length / hours : null,
          lastHour: times.filter((t) => t > now - 3_600_000).length,
          goldAgreement: g ? g.sum / g.items : null,
          goldChecks: g?.live ?? 0,
          screeningPassed: u.screeningPassed,
          peerAgreement: p ? p.sum / p.n : null,
        };
      });

    const n = (rows: { n: number }[], pick: (r: never) => boolean) =>
      Number(rows.find((r) => pick(r as never))?.n ?? 0);
    const open = n(tasksBy, (r: { status: string }) => r.status === 'open');
    const doneN = n(tasksBy, (r: { status: string }) => r.status === 'done');
    return {
      datasets: {
        prompts: {
          training: n(promptsBySplit, (r: { split: string }) => r.split === 'training'),
          heldout: n(promptsBySplit, (r: { split: string }) => r.split === 'heldout'),
        },
        tasks: { open, done: doneN, total: (await this.listTasks({ limit: 1, offset: 0 })).total },
        demonstrations: await count('demonstrations'),
        rankings: rankings.length,
        pairwiseFromRankings,
        comparisons: {
          eval: n(compBy, (r: { kind: string }) => r.kind === 'eval'),
          chat: n(compBy, (r: { kind: string }) => r.kind === 'chat'),
          pairwise: n(compBy, (r: { kind: string }) => r.kind === 'pairwise'),
        },
        goldItems: await count('gold_items'),
      },
      agreement: { overlappingTasks, labelerPairs: pairs, meanPairwiseAgreement: pairs ? agreeSum / pairs : null },
      labelers,
    };
  }
}
