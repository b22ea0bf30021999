/**
 * The model registry: every model folder the platform knows (a base it was started with, a folder an admin
 * registered, each job's output) as a version with its lineage — the model it was trained from, the data snapshot's
 * hash, the config and the final metrics. A folder is registered once: registering its path again returns the same
 * version.
 */
import type { Selectable } from 'kysely';
import { Aggregate, jsonOrNull } from './aggregate.js';
import { StoreError } from './errors.js';
import type { ModelHead, ModelKind, ModelsTable } from './schema.js';

export interface ModelVersion {
  id: number;
  name: string;
  path: string;
  kind: ModelKind;
  head: ModelHead;
  parentId: number | null;
  jobId: number | null;
  dataHash: string | null;
  config: Record<string, unknown> | null;
  metrics: Record<string, unknown> | null;
  params: number | null;
  createdAt: number;
  /** Ancestors, nearest first (parent, its parent, ...). */
  lineage: number[];
}

export interface NewModelVersion {
  name: string;
  /** The folder: relative to the shared models folder when inside it (jobs/model_paths.ts), else absolute. */
  path: string;
  kind: ModelKind;
  head: ModelHead;
  parentId?: number | null;
  jobId?: number | null;
  dataHash?: string | null;
  config?: object | null;
  metrics?: object | null;
  params?: number | null;
}

const parse = (text: string | null) => (text === null ? null : (JSON.parse(text) as Record<string, unknown>));

function toVersion(r: Selectable<ModelsTable>, lineage: number[] = []): ModelVersion {
  return {
    id: r.id,
    name: r.name,
    path: r.path,
    kind: r.kind,
    head: r.head,
    parentId: r.parent_id,
    jobId: r.job_id,
    dataHash: r.data_hash,
    config: parse(r.config),
    metrics: parse(r.metrics),
    params: r.params === null ? null : Number(r.params),
    createdAt: Number(r.created_at),
    lineage,
  };
}

export class Models extends Aggregate {
  /**
   * Registers a folder, or returns the version already registered at its path (`created` says which). Names are
   * unique (versions are served and picked by name): a name someone chose that another folder holds is a conflict;
   * a name the platform picked (`suffix`: a folder's base name, a job's `sft-3`) gets `-2`, `-3`... instead.
   * `formerPaths`: other paths the same folder may have been registered under (absolute, before the registry
   * recorded folders in the models folder relative to it).
   */
  async register(
    m: NewModelVersion,
    opts: { suffix?: boolean; formerPaths?: string[] } = {},
  ): Promise<{ model: ModelVersion; created: boolean }> {
    if (m.parentId != null) await this.get(m.parentId);
    const registered = await this.db
      .selectFrom('models')
      .selectAll()
      .where('path', 'in', [m.path, ...(opts.formerPaths ?? [])])
      .orderBy('id')
      .executeTakeFirst();
    if (registered) return { model: await this.withLineage(registered), created: false };
    let name = m.name;
    for (let n = 2; ; n++) {
      const holder = await this.db.selectFrom('models').select('path').where('name', '=', name).executeTakeFirst();
      if (!holder) break;
      if (!opts.suffix) {
        throw new StoreError(
          'conflict',
          `a model version named "${name}" is already registered (${holder.path}); give this one another name`,
          { field: 'name' },
        );
      }
      name = `${m.name}-${n}`;
    }
    const inserted = await this.db
      .insertInto('models')
      .values({
        name,
        path: m.path,
        kind: m.kind,
        head: m.head,
        parent_id: m.parentId ?? null,
        job_id: m.jobId ?? null,
        data_hash: m.dataHash ?? null,
        config: jsonOrNull(m.config),
        metrics: jsonOrNull(m.metrics),
        params: m.params ?? null,
        created_at: this.now(),
      })
      // Two servers starting with one --model at once both land here: the second finds the first's row.
      .onConflict((oc) => oc.column('path').doNothing())
      .returning('id')
      .executeTakeFirst();
    const row = await this.db.selectFrom('models').selectAll().where('path', '=', m.path).executeTakeFirstOrThrow();
    return { model: await this.withLineage(row), created: inserted !== undefined };
  }

  /**
   * Records each version's folder at `to(path)` instead, where that differs and no other version holds it; returns
   * how many moved. (Servers and workers move folders an older version registered by absolute path inside the shared
   * models folder to paths relative to it.)
   */
  async relocate(to: (path: string) => string): Promise<number> {
    let moved = 0;
    for (const r of await this.db.selectFrom('models').select(['id', 'path']).execute()) {
      const path = to(r.path);
      if (path === r.path) continue;
      const done = await this.db
        .updateTable('models')
        .set({ path })
        .where('id', '=', r.id)
        .where('path', '=', r.path)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('models as other').select('other.id').where('other.path', '=', path))),
        )
        .executeTakeFirst();
      moved += Number(done.numUpdatedRows);
    }
    return moved;
  }

  async get(id: number): Promise<ModelVersion> {
    const row = await this.db.selectFrom('models').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new StoreError('not_found', `model ${id} is not in the registry`);
    return this.withLineage(row);
  }

  /** Every version, oldest first, each with its lineage. */
  async list(): Promise<ModelVersion[]> {
    const rows = await this.db.selectFrom('models').selectAll().orderBy('id').execute();
    const parentOf = new Map(rows.map((r) => [r.id, r.parent_id]));
    return rows.map((r) => toVersion(r, ancestors(r.parent_id, parentOf)));
  }

  private async withLineage(row: Selectable<ModelsTable>): Promise<ModelVersion> {
    const parentOf = new Map<number, number | null>();
    let next = row.parent_id;
    while (next !== null && !parentOf.has(next)) {
      const p = await this.db
        .selectFrom('models')
        .select(['id', 'parent_id'])
        .where('id', '=', next)
        .executeTakeFirst();
      if (!p) break;
      parentOf.set(p.id, p.parent_id);
      next = p.parent_id;
    }
    return toVersion(row, ancestors(row.parent_id, parentOf));
  }
}

function ancestors(first: number | null, parentOf: Map<number, number | null>): number[] {
  const out: number[] = [];
  for (let id = first; id !== null && id !== undefined && !out.includes(id); id = parentOf.get(id) ?? null)
    out.push(id);
  return out;
}
