/** The admin's task list: search in the prompts, filter by kind and state, page through all of them. */
import { useEffect, useState } from 'react';
import { api, type TaskQuery } from '../../api.js';
import { Card, Empty, ErrorBox, Link, useLoad } from '../../ui.js';
import { Pager } from './Pager.js';

const PAGE = 50;

export function TaskList(props: { version: number }) {
  const [page, setPage] = useState(0);
  const [search, setSearch] = useState('');
  const [q, setQ] = useState('');
  const [kind, setKind] = useState<TaskQuery['kind'] | ''>('');
  const [state, setState] = useState<TaskQuery['state'] | ''>('');
  // Searching waits for a pause in typing, so each keystroke does not ask the server.
  useEffect(() => {
    const t = setTimeout(() => setQ(search.trim()), 300);
    return () => clearTimeout(t);
  }, [search]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new filter starts again at the first page
  useEffect(() => setPage(0), [q, kind, state]);
  const tasks = useLoad(
    () =>
      api.tasks({
        limit: PAGE,
        offset: page * PAGE,
        ...(q ? { q } : {}),
        ...(kind ? { kind } : {}),
        ...(state ? { state } : {}),
      }),
    [page, q, kind, state, props.version],
  );
  const total = tasks.data?.total ?? 0;
  const [error, setError] = useState<unknown>(null);
  const archive = async (id: number, archived: boolean) => {
    setError(null);
    try {
      await api.patchTask(id, { archived });
      tasks.reload();
    } catch (e) {
      setError(e);
    }
  };
  const filtered = q !== '' || kind !== '' || state !== '';
  return (
    <Card
      title={
        <>
          Tasks{' '}
          <span className="count" data-testid="task-count">
            {total}
          </span>
        </>
      }
      actions={<Pager page={page} pageSize={PAGE} total={total} onPage={setPage} />}
    >
      <div className="filters">
        <input
          type="search"
          placeholder="Search prompts…"
          aria-label="Search tasks by prompt"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
          data-testid="task-search"
        />
        <select aria-label="Kind" value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}>
          <option value="">All kinds</option>
          <option value="demonstration">Demonstration</option>
          <option value="ranking">Ranking</option>
          <option value="ab">A/B</option>
        </select>
        <select aria-label="State" value={state} onChange={(e) => setState(e.target.value as typeof state)}>
          <option value="">Any state</option>
          <option value="open">Needs labelers</option>
          <option value="done">Done</option>
          <option value="archived">Archived</option>
        </select>
      </div>
      <ErrorBox error={tasks.error ?? error} />
      {(tasks.data?.tasks.length ?? 0) === 0 ? (
        <Empty icon="☰" title={filtered ? 'No task matches' : 'No tasks yet'}>
          {filtered
            ? 'Change the search or the filters.'
            : 'Select prompts above and create tasks; labelers pick them up in order.'}
        </Empty>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th className="num">#</th>
              <th>Kind</th>
              <th>Prompt</th>
              <th>Split</th>
              <th>Progress</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {tasks.data!.tasks.map((t) => (
              <tr key={t.id}>
                <td className="num muted">{t.id}</td>
                <td>
                  <span className="pill">{t.kind}</span>
                </td>
                <td className="clip">{t.prompt}</td>
                <td className="muted">{t.split}</td>
                <td>
                  <span className="progress-mini">
                    <span style={{ width: `${Math.min(100, (t.done / t.target) * 100)}%` }} />
                  </span>{' '}
                  {t.done}/{t.target}
                  {t.open > 0 && <span className="muted"> · {t.open} open</span>}
                </td>
                <td className="row gap">
                  <Link to={`/admin/review?taskId=${t.id}`}>Submissions</Link>
                  <button
                    type="button"
                    className="btn btn-small"
                    data-testid={`task-archive-${t.id}`}
                    title="Archived tasks are not handed out and their work leaves the exports (restorable)"
                    onClick={() => void archive(t.id, !t.archived)}
                  >
                    {t.archived ? 'Restore' : 'Archive'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Card>
  );
}
