/** Admin prompts & tasks: type or import prompts (and any import kind), list them, create tasks. */
import { useState } from 'react';
import { api } from '../../api.js';
import { Card, Empty, ErrorBox, useLoad, useToast } from '../../ui.js';
import { Pager } from './Pager.js';
import { PromptText } from './PromptActions.js';
import { SplitPicker } from './SplitPicker.js';
import { TaskList } from './TaskList.js';

const PAGE = 50;
const IMPORT_KINDS = [
  ['prompts', '{"prompt": "..."}'],
  ['candidates', '{"prompt", "responses": [...], "model"?}'],
  ['gold', '{"prompt", "responses", "ranking"}'],
  ['demonstrations', '{"prompt", "completion"}'],
  ['rankings', '{"prompt", "responses", "ranking"}'],
  ['pairwise', '{"prompt", "chosen", "rejected"}'],
  ['eval', 'comparisons'],
] as const;

export function AdminData() {
  const toast = useToast();
  const [page, setPage] = useState(0);
  const [archived, setArchived] = useState(false);
  const prompts = useLoad(() => api.prompts(PAGE, page * PAGE, archived), [page, archived]);
  // Bumped after tasks are created, so that the task list reloads.
  const [taskVersion, setTaskVersion] = useState(0);
  const models = useLoad(() => api.models());
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [typed, setTyped] = useState('');
  const [typedSplit, setTypedSplit] = useState<'training' | 'heldout'>('training');
  const [kind, setKind] = useState<string>('prompts');
  const [file, setFile] = useState<File | null>(null);
  const [fileKey, setFileKey] = useState(0);
  const [taskKind, setTaskKind] = useState<'demonstration' | 'ranking' | 'ab'>('demonstration');
  const [modelA, setModelA] = useState('');
  const [modelB, setModelB] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const run = async (f: () => Promise<string>) => {
    setBusy(true);
    setError(null);
    try {
      toast(await f());
      prompts.reload();
      setTaskVersion((v) => v + 1);
      models.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const addTyped = () =>
    run(async () => {
      const lines = typed
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      const r = await api.addPrompts(lines.map((text) => ({ text, split: typedSplit })));
      setTyped('');
      return `Added ${r.ids.length} prompt${r.ids.length === 1 ? '' : 's'}`;
    });

  const upload = () =>
    run(async () => {
      if (!file) throw new Error('choose a .jsonl file first');
      const r = await api.importJsonl(kind, await file.text(), file.name);
      setFile(null);
      setFileKey((n) => n + 1);
      return `Imported ${r.imported} ${kind} record${r.imported === 1 ? '' : 's'}`;
    });

  const createTasks = () =>
    run(async () => {
      const r = await api.createTasks({
        kind: taskKind,
        promptIds: [...selected],
        ...(taskKind === 'ab' ? { modelA, modelB } : {}),
      });
      setSelected(new Set());
      const made = `Created ${r.ids.length} ${taskKind} task${r.ids.length === 1 ? '' : 's'}`;
      // Prompts that already had such a task are not labeled twice; say how many were left out.
      return r.skipped.length ? `${made}; ${r.skipped.length} prompt(s) already had one and were skipped` : made;
    });

  const rows = prompts.data?.prompts ?? [];
  const allOnPage = rows.length > 0 && rows.every((r) => selected.has(r.id));
  const total = prompts.data?.total ?? 0;

  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Prompts &amp; tasks</h1>
          <p className="lede">Load prompts, then turn them into demonstration, ranking or A/B tasks.</p>
        </div>
      </div>
      <ErrorBox error={error} />
      <div className="grid-2">
        <Card title="Type prompts">
          <label className="field">
            <span className="field-label">One prompt per line</span>
            <textarea
              rows={5}
              value={typed}
              data-testid="typed-prompts"
              placeholder={'Explain the moon landing to a 6 year old.\nWrite a short poem about a wise frog.'}
              onChange={(e) => setTyped(e.target.value)}
            />
          </label>
          <div className="row between">
            <SplitPicker split={typedSplit} onSplit={setTypedSplit} />
            <button
              type="button"
              className="btn btn-primary"
              disabled={busy || !typed.trim()}
              onClick={() => void addTyped()}
            >
              Add prompts
            </button>
          </div>
        </Card>
        <Card title="Upload JSONL">
          <div className="row gap wrap">
            <label className="field grow">
              <span className="field-label">Kind</span>
              <select value={kind} onChange={(e) => setKind(e.target.value)} data-testid="import-kind">
                {IMPORT_KINDS.map(([k, shape]) => (
                  <option key={k} value={k}>
                    {k} — {shape}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <label className="drop">
            <input
              key={fileKey}
              type="file"
              accept=".jsonl,.ndjson,.json,.txt"
              data-testid="import-file"
              onChange={(e) => setFile(e.target.files?.[0] ?? null)}
            />
            <span className="drop-icon" aria-hidden="true">
              ⇪
            </span>
            {file ? (
              <span className="drop-file">
                {file.name} <span className="muted small">({Math.ceil(file.size / 1024)} KB)</span>
              </span>
            ) : (
              <span>
                <b>Choose a .jsonl file</b> — one JSON record per line
              </span>
            )}
          </label>
          <div className="row end">
            <button
              type="button"
              className="btn btn-primary"
              disabled={busy || !file}
              onClick={() => void upload()}
              data-testid="import-go"
            >
              Import
            </button>
          </div>
        </Card>
      </div>

      <Card
        title={
          <>
            Prompts <span className="count">{total}</span>
          </>
        }
        actions={
          <div className="row gap">
            <label className="check">
              <input
                type="checkbox"
                checked={archived}
                data-testid="show-archived-prompts"
                onChange={() => {
                  setArchived(!archived);
                  setPage(0);
                }}
              />
              Archived
            </label>
            <Pager page={page} pageSize={PAGE} total={total} onPage={setPage} />
          </div>
        }
      >
        {rows.length === 0 ? (
          <Empty icon="✎" title={archived ? 'No archived prompts' : 'No prompts yet'}>
            {archived ? 'Archived prompts appear here, to restore.' : 'Type a few above or upload a JSONL file.'}
          </Empty>
        ) : (
          <>
            <div className="taskbar">
              <span>
                <b>{selected.size}</b> selected
              </span>
              <select
                value={taskKind}
                onChange={(e) => setTaskKind(e.target.value as typeof taskKind)}
                data-testid="task-kind"
              >
                <option value="demonstration">Demonstration (write the ideal answer)</option>
                <option value="ranking">Ranking (K candidates from the source model)</option>
                <option value="ab">A/B comparison (two models)</option>
              </select>
              {taskKind === 'ab' && (
                <>
                  <ModelSelect models={models.data?.models ?? []} value={modelA} onChange={setModelA} label="Model A" />
                  <ModelSelect models={models.data?.models ?? []} value={modelB} onChange={setModelB} label="Model B" />
                </>
              )}
              <button
                type="button"
                className="btn btn-primary"
                disabled={busy || selected.size === 0}
                onClick={() => void createTasks()}
                data-testid="create-tasks"
              >
                Create {selected.size || ''} task{selected.size === 1 ? '' : 's'}
              </button>
            </div>
            <table className="table">
              <thead>
                <tr>
                  <th className="check-col">
                    <input
                      type="checkbox"
                      aria-label="Select all on this page"
                      checked={allOnPage}
                      data-testid="select-all"
                      onChange={() => {
                        const next = new Set(selected);
                        for (const r of rows) {
                          if (allOnPage) next.delete(r.id);
                          else next.add(r.id);
                        }
                        setSelected(next);
                      }}
                    />
                  </th>
                  <th className="num">#</th>
                  <th>Prompt</th>
                  <th />
                  <th>Split</th>
                  <th>Source</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.id} className={selected.has(r.id) ? 'selected' : ''}>
                    <td className="check-col">
                      <input
                        type="checkbox"
                        aria-label={`Select prompt ${r.id}`}
                        checked={selected.has(r.id)}
                        onChange={() => {
                          const next = new Set(selected);
                          if (next.has(r.id)) next.delete(r.id);
                          else next.add(r.id);
                          setSelected(next);
                        }}
                      />
                    </td>
                    <td className="num muted">{r.id}</td>
                    <PromptText
                      row={r}
                      onChanged={(message) => {
                        toast(message);
                        prompts.reload();
                        setTaskVersion((v) => v + 1);
                      }}
                    />
                    <td>
                      <span className={`pill ${r.split === 'heldout' ? 'pill-warn' : ''}`}>{r.split}</span>
                    </td>
                    <td className="muted">{r.source}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Card>

      <TaskList version={taskVersion} />
    </div>
  );
}

function ModelSelect(props: { models: string[]; value: string; onChange: (v: string) => void; label: string }) {
  return (
    <select aria-label={props.label} value={props.value} onChange={(e) => props.onChange(e.target.value)}>
      <option value="">{props.label}…</option>
      {props.models.map((m) => (
        <option key={m} value={m}>
          {m}
        </option>
      ))}
    </select>
  );
}
