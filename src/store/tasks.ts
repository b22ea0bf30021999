/** Tasks and their assignments to labelers: handing out work, deadlines, and what a labeler sees. */
import { type ExpressionBuilder, sql } from 'kysely';
import { Aggregate, count } from './aggregate.js';
import { likeText } from './curation.js';
import { StoreError } from './errors.js';
import { prepared } from './prepared.js';
import type { Database, Split, TaskKind } from './schema.js';
import type { PublicUser } from './users.js';

/** What a labeler sees for one assignment: never gold, other labelers' work, or model names for A/B. */
export type AssignmentView = {
  id: number;
  /** The labeler's own count: their first task is 1 (ids are shared by everyone, so they say nothing to a labeler). */
  number: number;
  /**
   * `expired`: the deadline passed and the task went back to the pool (see `Submissions.openRow` for late submits);
   * `skipped`: the labeler passed on it (or reported its prompt).
   */
  status: 'open' | 'done' | 'expired' | 'skipped';
  /** Submission deadline (epoch ms), or null when assignments do not expire. */
  expiresAt: number | null;
  prompt: string;
} & ({ kind: 'demonstration' } | { kind: 'ranking'; responses: string[] } | { kind: 'ab'; a: string; b: string });

// The statements of every hand-out, compiled once (see prepared.ts).

/** A labeler's own hand-outs queue on their user row (PostgreSQL; SQLite's write lock already serialises them). */
const lockUser = prepared((db, v: { id: number }) =>
  db.selectFrom('users').select('id').where('id', '=', v.id).forUpdate(),
);

/** The labeler's open assignment, if any. Skipped assignments are marked expired too, so this never hands one back. */
const openAssignment = prepared((db, v: { userId: number }) =>
  db
    .selectFrom('assignments')
    .innerJoin('tasks', 'tasks.id', 'assignments.task_id')
    .select('assignments.id')
    .where('assignments.user_id', '=', v.userId)
    // Literals, so that PostgreSQL keeps one plan for this lookup: with the limit a parameter it planned it anew
    // on every hand-out (as takeFromPool), and with the status one, its kept plan could not know that few
    // assignments are open, and walked every assignment in id order (0.67 ms instead of 0.02 on bench:server).
    .where('assignments.status', '=', sql.lit('open'))
    .where('assignments.expired_at', 'is', null)
    .where('tasks.archived_at', 'is', null)
    .orderBy('assignments.id')
    .limit(sql.lit(1)),
);

/**
 * Takes a seat of the oldest task of the labeler's split that has room and that they were never given, in one
 * statement; no row when there is none. On PostgreSQL the pick locks its task and skips one that another server is
 * handing out (`SKIP LOCKED`): the task it returns has room, and keeps it until the seat is taken.
 */
const takeFromPool = prepared((db, v: { split: Split; userId: number }, dialect) => {
  let pick = db
    .selectFrom('tasks as pool')
    .select('pool.id')
    .where('pool.split', '=', v.split)
    // Spelled as in the partial index tasks_needing_labelers, so the planner walks only tasks with room.
    .where('pool.assigned_count', '<', (eb) => eb.ref('pool.target'))
    .where('pool.archived_at', 'is', null)
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('assignments')
            .select('assignments.id')
            .whereRef('assignments.task_id', '=', 'pool.id')
            .where('assignments.user_id', '=', v.userId)
            // An optimisation fence: without it PostgreSQL turns NOT EXISTS into an anti-join that reads every
            // assignment in the table on each pick (1.2 ms at 10k assignments and growing); with it, the check is
            // one index probe per candidate task, and the first candidate nearly always wins. The limits are
            // literals: as parameters PostgreSQL cannot cost a plan kept for any limit, so it planned the pick
            // anew on every hand-out (0.22 ms of planning against 0.16 ms of running it).
            .limit(sql.lit(1))
            .offset(sql.lit(0)),
        ),
      ),
    )
    .orderBy('pool.id')
    .limit(sql.lit(1));
  if (dialect === 'postgres') pick = pick.forUpdate().skipLocked();
  return (
    db
      .updateTable('tasks')
      .set((eb) => ({ assigned_count: eb('assigned_count', '+', 1) }))
      .where('id', '=', pick)
      .where('assigned_count', '<', (eb) => eb.ref('target'))
      // What the labeler will see, and the number of their latest assignment (from the index).
      .returning((eb) => [
        'id',
        'kind',
        'set_id',
        eb.selectFrom('prompts').select('prompts.text').whereRef('prompts.id', '=', 'tasks.prompt_id').as('prompt'),
        eb
          .selectFrom('assignments')
          .select((e) => e.fn.max('assignments.number').as('n'))
          .where('assignments.user_id', '=', v.userId)
          .as('last'),
      ])
  );
});

const insertAssignment = prepared(
  (db, v: { taskId: number; userId: number; number: number; swapped: number; now: number; expiresAt: number | null }) =>
    db
      .insertInto('assignments')
      .values({
        task_id: v.taskId,
        user_id: v.userId,
        number: v.number,
        status: 'open',
        swapped: v.swapped,
        created_at: v.now,
        expires_at: v.expiresAt,
      })
      .returning('id'),
);

/** Marks the labeler's assignment done if it is open, on time and not skipped; see `Tasks.finishIfOpen`. */
const finishOpenAssignment = prepared((db, v: { id: number; userId: number; now: number }) =>
  db
    .updateTable('assignments')
    .set({ status: 'done', completed_at: v.now })
    .where('id', '=', v.id)
    .where('user_id', '=', v.userId)
    .where('status', '=', 'open')
    .where('expired_at', 'is', null)
    .where('skipped_at', 'is', null)
    .returning(assignmentColumns),
);

/** An assignment with its task and prompt, as `Tasks.row` reads it. */
export type AssignmentRow = Awaited<ReturnType<Tasks['row']>>;

export interface TaskQuery {
  limit: number;
  offset: number;
  q?: string;
  kind?: TaskKind;
  /** `open` and `done` are among the live tasks (the default: all live ones); `archived` lists the archived. */
  state?: 'open' | 'done' | 'archived';
}

export class Tasks extends Aggregate {
  async create(t: { kind: TaskKind; promptId: number; setId: number | null; target: number }): Promise<number> {
    const prompt = await this.s.prompts.get(t.promptId);
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

  /**
   * The admin's tasks of this kind already made for these prompts (prompt id → task id), so that a second batch
   * does not label one prompt twice; an A/B task counts only for the same two models.
   */
  async existing(kind: TaskKind, promptIds: number[], models?: [string, string]): Promise<Map<number, number>> {
    if (promptIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('tasks')
      .leftJoin('responses', 'responses.set_id', 'tasks.set_id')
      .select(['tasks.id', 'tasks.prompt_id', 'responses.model'])
      .where('tasks.kind', '=', kind)
      .where('tasks.gold_id', 'is', null)
      .where('tasks.archived_at', 'is', null)
      .where('tasks.prompt_id', 'in', promptIds)
      .orderBy('tasks.id')
      .execute();
    const found = new Map<number, number>();
    const modelsOf = new Map<number, Set<string | null>>();
    for (const r of rows) modelsOf.set(r.id, (modelsOf.get(r.id) ?? new Set()).add(r.model));
    for (const r of rows) {
      const m = modelsOf.get(r.id)!;
      const same = !models || (m.size === 2 && m.has(models[0]) && m.has(models[1]));
      if (same && !found.has(r.prompt_id)) found.set(r.prompt_id, r.id);
    }
    return found;
  }

  /**
   * The admin's task list, oldest first: `q` searches the prompt (case-insensitive, literally), `kind` and `state`
   * filter (`open`: fewer labelers have completed it than it needs; `done`: enough have; `archived`: the archived
   * ones, which the other views leave out); `total` counts the matches. Rejected work does not count as done.
   */
  async list(q: TaskQuery) {
    const done = (eb: ExpressionBuilder<Database, 'tasks' | 'prompts'>) =>
      eb
        .selectFrom('assignments')
        .select((e) => e.fn.countAll<number>().as('n'))
        .whereRef('assignments.task_id', '=', 'tasks.id')
        .where('assignments.status', '=', 'done')
        .where((e) => e.or([e('assignments.review', 'is', null), e('assignments.review', '!=', 'rejected')]));
    const matching = () => {
      let query = this.db
        .selectFrom('tasks')
        .innerJoin('prompts', 'prompts.id', 'tasks.prompt_id')
        .where('tasks.gold_id', 'is', null)
        .where('tasks.archived_at', q.state === 'archived' ? 'is not' : 'is', null);
      if (q.kind) query = query.where('tasks.kind', '=', q.kind);
      if (q.q) query = query.where((eb) => eb(eb.fn('lower', ['prompts.text']), 'like', likeText(q.q!)));
      if (q.state === 'open' || q.state === 'done') {
        const op = q.state === 'open' ? '<' : '>=';
        query = query.where((eb) => eb(done(eb), op, eb.ref('tasks.target')));
      }
      return query;
    };
    const rows = await matching()
      .select((eb) => [
        'tasks.id',
        'tasks.kind',
        'tasks.split',
        'tasks.target',
        'tasks.created_at as createdAt',
        'tasks.archived_at as archivedAt',
        'prompts.text as prompt',
        done(eb).as('done'),
        eb
          .selectFrom('assignments')
          .select((e) => e.fn.countAll<number>().as('n'))
          .whereRef('assignments.task_id', '=', 'tasks.id')
          .where('assignments.status', '=', 'open')
          .where('assignments.expired_at', 'is', null)
          .as('open'),
      ])
      .orderBy('tasks.id')
      .limit(q.limit)
      .offset(q.offset)
      .execute();
    const { n } = await matching()
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return {
      total: count(n),
      tasks: rows.map(({ archivedAt, ...r }) => ({
        ...r,
        archived: archivedAt !== null,
        done: count(r.done),
        open: count(r.open),
      })),
    };
  }

  /**
   * After a bulk insert PostgreSQL's planner keeps the near-empty table's statistics until autovacuum analyzes it (up
   * to a minute later) and meanwhile plans `next()` as "collect every open task, sort, take one": at 50 concurrent
   * labelers on 60k fresh tasks that took p99 from 25 ms to 3 s. Analyzing at once keeps it on its index.
   */
  async refreshStatistics(): Promise<void> {
    if (this.s.dialect === 'postgres') await sql`analyze tasks, assignments`.execute(this.db);
  }

  /**
   * The labeler's open assignment, or a new one: the oldest task of the labeler's split that still needs
   * labelers and that this labeler has never been given. Returns null when nothing is left. Overdue assignments
   * (anyone's) go back to the pool first (swept at most once a second by each process: each sweep is a statement).
   *
   * Safe with several app servers on one PostgreSQL database: a labeler's own requests queue on their user row, and
   * a task is picked and its seat taken in one conditional statement that skips a task being handed out by another
   * server (`FOR UPDATE SKIP LOCKED`), so a task never gets more labelers than its target. On SQLite the write lock
   * serialises all of this.
   */
  async next(
    user: PublicUser,
    opts: { random?: () => number; timeoutMs?: number; goldRate?: number } = {},
  ): Promise<AssignmentView | null> {
    if (user.role !== 'labeler' || !user.split) throw new StoreError('forbidden', 'only labelers in a group get tasks');
    const random = opts.random ?? Math.random;
    const sweep = this.sweepDue();
    return this.s.tx(async (s) => {
      // A labeler's own requests queue here, so they never get two assignments. The lookup below must be a statement
      // of its own, after the lock: in one statement with it, it would read the snapshot taken before the wait, and
      // miss the assignment that the request it waited for had just committed.
      if (s.dialect === 'postgres') await lockUser(s, { id: user.id });
      if (sweep) await s.tasks.releaseOverdue();
      const open = await openAssignment(s, { userId: user.id });
      if (open) return s.tasks.view(open.id, user.id);
      const pooled = await takeFromPool(s, { split: user.split!, userId: user.id });
      if (!pooled) return null;
      let task: { id: number; kind: TaskKind } = pooled;
      // Gold only stands in for real ranking work, so it never keeps a labeler busy once the pool is empty.
      if (task.kind === 'ranking' && random() < (opts.goldRate ?? 0)) {
        const gold = await s.gold.unseenTask(user.id);
        if (gold && (await s.tasks.takeSeat(gold.id))) {
          await s.tasks.giveBackSeats([task.id], 1);
          task = gold;
        }
      }
      const assignment = {
        taskId: task.id,
        userId: user.id,
        number: (pooled.last ?? 0) + 1,
        swapped: task.kind === 'ab' && random() < 0.5 ? 1 : 0,
        now: s.now(),
        expiresAt: opts.timeoutMs ? s.now() + opts.timeoutMs : null,
      };
      const { id } = (await insertAssignment(s, assignment))!;
      if (task !== pooled) return s.tasks.view(id, user.id);
      // Everything the labeler sees came back with the pick, so the new assignment is not read again.
      const { kind, set_id, prompt } = pooled;
      const base = { id, number: assignment.number, status: 'open' as const, expiresAt: assignment.expiresAt };
      return s.tasks.present({ ...base, prompt: prompt! }, { kind, set_id, swapped: assignment.swapped });
    });
  }

  /** When this process last swept for overdue assignments in `next`. */
  private sweptAt = Number.NEGATIVE_INFINITY;

  private sweepDue(): boolean {
    const now = this.now();
    if (now >= this.sweptAt && now - this.sweptAt < 1000) return false;
    this.sweptAt = now;
    return true;
  }

  /**
   * Takes one of the task's seats; false when it is full. The check and the increment are one statement, so of two
   * servers racing for the last seat exactly one gets it. Gold tasks have no capacity: every labeler may meet each.
   */
  async takeSeat(taskId: number): Promise<boolean> {
    const r = await this.db
      .updateTable('tasks')
      .set((eb) => ({ assigned_count: eb('assigned_count', '+', 1) }))
      .where('id', '=', taskId)
      .where((eb) => eb.or([eb('gold_id', 'is not', null), eb('assigned_count', '<', eb.ref('target'))]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Gives back `n` seats of each of these tasks. */
  private async giveBackSeats(taskIds: number[], n: number): Promise<void> {
    await this.db
      .updateTable('tasks')
      .set((eb) => ({ assigned_count: eb('assigned_count', '-', n) }))
      .where('id', 'in', taskIds)
      .execute();
  }

  /** Takes back open assignments whose deadline has passed, so their tasks can go to other labelers. */
  async releaseOverdue(): Promise<number> {
    return this.s.tx(async (s) => {
      const now = s.now();
      // Marked first, and seats given back for exactly the rows this statement marked: of two servers sweeping at
      // once, the second waits on the first's rows and then finds them no longer overdue, so no seat returns twice.
      // The filter is spelled as in the partial index assignments_pending_deadline.
      const released = await s.db
        .updateTable('assignments')
        .set({ expired_at: now })
        .where('status', '=', 'open')
        .where('expired_at', 'is', null)
        .where('expires_at', '<=', now)
        .returning('task_id')
        .execute();
      const perTask = new Map<number, number>();
      for (const r of released) perTask.set(r.task_id, (perTask.get(r.task_id) ?? 0) + 1);
      // One statement per distinct count (nearly always one: a seat per task).
      const byCount = new Map<number, number[]>();
      for (const [taskId, n] of perTask) byCount.set(n, [...(byCount.get(n) ?? []), taskId]);
      for (const [n, taskIds] of byCount) await s.tasks.giveBackSeats(taskIds, n);
      return released.length;
    });
  }

  /** The assignment with its task and prompt; another labeler's is reported as missing, so ids reveal nothing. */
  async row(assignmentId: number, userId: number) {
    return withTask(owned(await this.rowQuery(assignmentId).executeTakeFirst(), assignmentId, userId));
  }

  /**
   * Marks the labeler's assignment done if it is open, on time and not skipped, and returns it as `row` reads it (as
   * it was, open); undefined otherwise, for the caller to read it and say why. One statement for the usual submission.
   */
  async finishIfOpen(assignmentId: number, userId: number): Promise<AssignmentRow | undefined> {
    const r = await finishOpenAssignment(this.s, { id: assignmentId, userId, now: this.now() });
    return r && { ...withTask(r), status: 'open', expired_at: null, skipped_at: null };
  }

  private rowQuery(assignmentId: number) {
    return this.db.selectFrom('assignments').select(assignmentColumns).where('assignments.id', '=', assignmentId);
  }

  async view(assignmentId: number, userId: number): Promise<AssignmentView> {
    const row = withTask(
      owned(await this.rowQuery(assignmentId).select('assignments.number').executeTakeFirst(), assignmentId, userId),
    );
    const status: AssignmentView['status'] =
      row.skipped_at !== null ? 'skipped' : row.expired_at !== null ? 'expired' : row.status;
    const base = { id: row.id, number: row.number, status, expiresAt: row.expires_at, prompt: row.prompt };
    return this.present(base, row);
  }

  /** The view from the assignment's own fields; a ranking's or an A/B's responses are read here. */
  async present(
    base: Omit<AssignmentView, 'kind' | 'responses' | 'a' | 'b'>,
    task: { kind: TaskKind; set_id: number | null; swapped: number },
  ): Promise<AssignmentView> {
    if (task.kind === 'demonstration') return { ...base, kind: 'demonstration' };
    const responses = (await this.s.prompts.setResponses(task.set_id!)).map((r) => r.text);
    if (task.kind === 'ranking') return { ...base, kind: 'ranking', responses };
    const [a, b] = task.swapped ? [responses[1], responses[0]] : [responses[0], responses[1]];
    return { ...base, kind: 'ab', a, b };
  }
}

/**
 * An assignment's fields with its task's and its prompt, as `row` and `finishIfOpen` read them. The task's come as
 * subqueries, because SQLite's RETURNING cannot name a joined table.
 */
function assignmentColumns(eb: ExpressionBuilder<Database, 'assignments'>) {
  const task = eb.selectFrom('tasks').whereRef('tasks.id', '=', 'assignments.task_id');
  return [
    'assignments.id',
    'assignments.status',
    'assignments.swapped',
    'assignments.user_id',
    'assignments.expires_at',
    'assignments.expired_at',
    'assignments.skipped_at',
    'assignments.task_id',
    task.select('archived_at').as('task_archived_at'),
    task.select('kind').as('kind'),
    task.select('set_id').as('set_id'),
    task.select('prompt_id').as('prompt_id'),
    task.select('gold_id').as('gold_id'),
    task.innerJoin('prompts', 'prompts.id', 'tasks.prompt_id').select('prompts.text').as('prompt'),
  ] as const;
}

/** Every assignment has a task and the task a prompt, so these subqueries always find one. */
function withTask<R extends { kind: TaskKind | null; prompt_id: number | null; prompt: string | null }>(r: R) {
  return { ...r, kind: r.kind!, prompt_id: r.prompt_id!, prompt: r.prompt! };
}

function owned<R extends { user_id: number }>(row: R | undefined, assignmentId: number, userId: number): R {
  if (!row || row.user_id !== userId) throw new StoreError('not_found', `no assignment ${assignmentId}`);
  return row;
}
