/** The admin overview: dataset sizes, inter-labeler agreement, and each labeler's throughput and quality. */
import { Aggregate, GOLD_SOURCE } from './aggregate.js';
import { keptLabel } from './curation.js';
import { orderedPairs, pairwiseAgreement, type RankingOrder } from './ranking.js';
import type { Database } from './schema.js';

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
    /** Mean pairwise agreement with gold over every screening attempt's items and gold met in live work. */
    goldAgreement: number | null;
    /** Gold items met in live ranking work. */
    goldChecks: number;
    screeningPassed: boolean;
    peerAgreement: number | null;
  }[];
}

/** A pause longer than this between two completed tasks is a break, not working time. */
const BREAK_MS = 30 * 60_000;

/**
 * Tasks per hour of work: completions over the time between them, leaving out breaks, and over at least one hour
 * (two tasks a few seconds apart are two tasks in that hour, not thousands per hour).
 */
export function perWorkingHour(completedAt: number[]): number {
  const t = [...completedAt].sort((a, b) => a - b);
  let workingMs = 0;
  for (let i = 1; i < t.length; i++) if (t[i] - t[i - 1] <= BREAK_MS) workingMs += t[i] - t[i - 1];
  return t.length / Math.max(1, workingMs / 3_600_000);
}

export class Stats extends Aggregate {
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
    // Assignments by state, as the per-labeler figures count them (no rejected work, nothing archived).
    const tasksBy = await this.db
      .selectFrom('assignments')
      .innerJoin('tasks', 'tasks.id', 'assignments.task_id')
      .innerJoin('prompts', 'prompts.id', 'tasks.prompt_id')
      .select(['assignments.status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('assignments.expired_at', 'is', null)
      .where(keptLabel)
      .groupBy('assignments.status')
      .execute();
    const compBy = await this.db
      .selectFrom('comparisons')
      .select(['kind', (eb) => eb.fn.countAll<number>().as('n')])
      .where('choice', 'is not', null)
      .groupBy('kind')
      .execute();
    // Dataset sizes count what the exports hold: no rejected or archived work.
    const rankings = await this.db
      .selectFrom('rankings')
      .innerJoin('prompts', 'prompts.id', 'rankings.prompt_id')
      .leftJoin('assignments', 'assignments.id', 'rankings.assignment_id')
      .leftJoin('tasks', 'tasks.id', 'assignments.task_id')
      .select('rankings.ranking')
      .where(keptLabel)
      .execute();
    const { n: demonstrations } = await this.db
      .selectFrom('demonstrations')
      .innerJoin('prompts', 'prompts.id', 'demonstrations.prompt_id')
      .leftJoin('assignments', 'assignments.id', 'demonstrations.assignment_id')
      .leftJoin('tasks', 'tasks.id', 'assignments.task_id')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where(keptLabel)
      .executeTakeFirstOrThrow();
    let pairwiseFromRankings = 0;
    for (const r of rankings) {
      pairwiseFromRankings += orderedPairs(JSON.parse(r.ranking) as RankingOrder).length;
    }

    // Inter-labeler agreement on tasks ranked by two or more labelers, over the rankings that count.
    const labeled = await this.db
      .selectFrom('rankings')
      .innerJoin('prompts', 'prompts.id', 'rankings.prompt_id')
      .innerJoin('assignments', 'assignments.id', 'rankings.assignment_id')
      .innerJoin('tasks', 'tasks.id', 'assignments.task_id')
      .select(['assignments.task_id', 'rankings.user_id', 'rankings.ranking'])
      .where(keptLabel)
      .execute();
    const byTask = new Map<number, { user: number; ranking: RankingOrder }[]>();
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
    // Per-labeler figures count what the exports hold: no rejected work, nothing on an archived prompt or task.
    const done = await this.db
      .selectFrom('assignments')
      .innerJoin('tasks', 'tasks.id', 'assignments.task_id')
      .innerJoin('prompts', 'prompts.id', 'tasks.prompt_id')
      .select(['assignments.user_id', 'assignments.completed_at'])
      .where('assignments.status', '=', 'done')
      .where(keptLabel)
      .execute();
    const perUser = new Map<number, number[]>();
    for (const d of done) {
      const l = perUser.get(d.user_id) ?? [];
      l.push(d.completed_at!);
      perUser.set(d.user_id, l);
    }
    // Agreement with gold per item answered: every screening attempt (failed ones too), then gold met in live work.
    const screening = await this.db.selectFrom('screening_results').select(['user_id', 'score', 'answers']).execute();
    const gold = new Map<number, { sum: number; items: number; live: number }>();
    for (const s of screening) {
      const items = (JSON.parse(s.answers) as unknown[]).length;
      const g = gold.get(s.user_id) ?? { sum: 0, items: 0, live: 0 };
      gold.set(s.user_id, { sum: g.sum + s.score * items, items: g.items + items, live: 0 });
    }
    const liveGold = await this.db.selectFrom('gold_answers').select(['user_id', 'agreement']).execute();
    for (const a of liveGold) {
      const g = gold.get(a.user_id) ?? { sum: 0, items: 0, live: 0 };
      gold.set(a.user_id, { sum: g.sum + a.agreement, items: g.items + 1, live: g.live + 1 });
    }

    const labelers = (await this.s.users.list())
      .filter((u) => u.role === 'labeler')
      .map((u) => {
        const times = perUser.get(u.id) ?? [];
        const p = peer.get(u.id);
        const g = gold.get(u.id);
        return {
          id: u.id,
          username: u.username,
          group: u.group,
          completed: times.length,
          perHour: times.length > 0 ? perWorkingHour(times) : null,
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
        tasks: { open, done: doneN, total: (await this.s.tasks.list({ limit: 1, offset: 0 })).total },
        demonstrations: Number(demonstrations),
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
