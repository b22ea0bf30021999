/** Admin: overview dashboards + exports, prompts & tasks, screening test, settings, people. */
import { useEffect, useState } from 'react';
import { api, type GoldRow, type Settings } from '../api.js';
import { Card, Empty, ErrorBox, errorText, pct, Spinner, Stat, useLoad, useToast } from '../ui.js';

const EXPORTS: { kind: string; what: string }[] = [
  { kind: 'demonstrations', what: 'SFT data: prompt + completion' },
  { kind: 'rankings', what: 'K-way rankings with scores and flags' },
  { kind: 'pairwise', what: 'chosen / rejected pairs for the RM' },
  { kind: 'prompts', what: 'PPO prompts' },
  { kind: 'eval', what: 'A/B and chat comparisons' },
];

// ---------------------------------------------------------------- overview

export function AdminOverview() {
  const dash = useLoad(() => api.dashboard());
  const [split, setSplit] = useState<'training' | 'heldout'>('training');
  const d = dash.data;
  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Overview</h1>
          <p className="lede">Dataset sizes, labeler throughput and agreement, and exports.</p>
        </div>
        <button type="button" className="btn" onClick={dash.reload}>
          Refresh
        </button>
      </div>
      <ErrorBox error={dash.error} />
      {!d ? (
        <div className="center">
          <Spinner />
        </div>
      ) : (
        <>
          <div className="stats">
            <Stat
              label="Prompts"
              value={d.datasets.prompts.training + d.datasets.prompts.heldout}
              sub={`${d.datasets.prompts.training} training · ${d.datasets.prompts.heldout} held out`}
            />
            <Stat
              label="Completed"
              value={d.datasets.tasks.done}
              sub={`${d.datasets.tasks.open} open · ${d.datasets.tasks.total} tasks`}
            />
            <Stat label="Demonstrations" value={d.datasets.demonstrations} testId="stat-demos" />
            <Stat
              label="Rankings"
              value={d.datasets.rankings}
              sub={`${d.datasets.pairwiseFromRankings} pairwise comparisons`}
              testId="stat-rankings"
            />
            <Stat
              label="Comparisons"
              value={d.datasets.comparisons.eval + d.datasets.comparisons.chat + d.datasets.comparisons.pairwise}
              sub={`${d.datasets.comparisons.eval} A/B · ${d.datasets.comparisons.chat} chat · ${d.datasets.comparisons.pairwise} imported`}
            />
            <Stat label="Gold items" value={d.datasets.goldItems} />
          </div>
          <div className="grid-2">
            <Card title="Inter-labeler agreement">
              {d.agreement.meanPairwiseAgreement === null ? (
                <Empty icon="⇄" title="No overlapping rankings yet">
                  Agreement appears once two labelers rank the same task. Set the overlap share under Settings.
                </Empty>
              ) : (
                <>
                  <div className="agree">
                    <div className="agree-big">{pct(d.agreement.meanPairwiseAgreement)}</div>
                    <div className="muted">
                      mean pairwise agreement over {d.agreement.overlappingTasks} overlapping task
                      {d.agreement.overlappingTasks === 1 ? '' : 's'} ({d.agreement.labelerPairs} labeler pairs). The
                      paper reports about 73% between trained labelers.
                    </div>
                  </div>
                  <Bar value={d.agreement.meanPairwiseAgreement} />
                </>
              )}
            </Card>
            <Card title="Exports" actions={<SplitPicker split={split} onSplit={setSplit} />}>
              <ul className="exports">
                {EXPORTS.map((e) => (
                  <li key={e.kind}>
                    <div>
                      <div className="export-name">{e.kind}.jsonl</div>
                      <div className="muted small">{e.what}</div>
                    </div>
                    <a
                      className="btn btn-small"
                      href={`/api/admin/export/${e.kind}?split=${split}`}
                      download={`${e.kind}-${split}.jsonl`}
                      data-testid={`export-${e.kind}`}
                    >
                      Download
                    </a>
                  </li>
                ))}
              </ul>
            </Card>
          </div>
          <Card title="Labelers">
            {d.labelers.length === 0 ? (
              <Empty icon="☺" title="No labelers yet">
                Add labelers under People; their throughput and agreement show up here.
              </Empty>
            ) : (
              <table className="table">
                <thead>
                  <tr>
                    <th>Labeler</th>
                    <th>Group</th>
                    <th>Screening</th>
                    <th className="num">Done</th>
                    <th className="num">Last hour</th>
                    <th className="num">Per hour</th>
                    <th>Gold agreement</th>
                    <th>Peer agreement</th>
                  </tr>
                </thead>
                <tbody>
                  {d.labelers.map((l) => (
                    <tr key={l.id}>
                      <td className="strong">{l.username}</td>
                      <td>{l.group ?? '—'}</td>
                      <td>
                        {l.screeningPassed ? (
                          <span className="pill pill-good">passed</span>
                        ) : (
                          <span className="pill">pending</span>
                        )}
                      </td>
                      <td className="num">{l.completed}</td>
                      <td className="num">{l.lastHour}</td>
                      <td className="num">{l.perHour === null ? '—' : l.perHour.toFixed(l.perHour >= 100 ? 0 : 1)}</td>
                      <td>
                        <Meter value={l.goldAgreement} />
                        {l.goldChecks > 0 && <span className="muted small"> {l.goldChecks} live</span>}
                      </td>
                      <td>
                        <Meter value={l.peerAgreement} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Card>
        </>
      )}
    </div>
  );
}

function Bar(props: { value: number | null }) {
  return (
    <div className="bar" aria-hidden="true">
      <div style={{ width: `${Math.round((props.value ?? 0) * 100)}%` }} />
    </div>
  );
}

function Meter(props: { value: number | null }) {
  if (props.value === null) return <span className="muted">—</span>;
  const tone = props.value >= 0.75 ? 'good' : props.value >= 0.6 ? 'warn' : 'bad';
  return (
    <span className={`meter meter-${tone}`}>
      <span className="meter-track">
        <span style={{ width: `${Math.round(props.value * 100)}%` }} />
      </span>
      {pct(props.value)}
    </span>
  );
}

function SplitPicker(props: { split: 'training' | 'heldout'; onSplit: (s: 'training' | 'heldout') => void }) {
  return (
    <div className="seg" role="radiogroup" aria-label="Split">
      {(['training', 'heldout'] as const).map((s) => (
        <button
          key={s}
          type="button"
          role="radio"
          aria-checked={props.split === s}
          className={props.split === s ? 'on' : ''}
          onClick={() => props.onSplit(s)}
        >
          {s === 'training' ? 'Training' : 'Held out'}
        </button>
      ))}
    </div>
  );
}

// ---------------------------------------------------------------- prompts and tasks

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
  const prompts = useLoad(() => api.prompts(PAGE, page * PAGE), [page]);
  const tasks = useLoad(() => api.tasks(PAGE, 0));
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
      tasks.reload();
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
      return `Created ${r.ids.length} ${taskKind} task${r.ids.length === 1 ? '' : 's'}`;
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
          total > PAGE && (
            <div className="row gap">
              <button type="button" className="btn btn-small" disabled={page === 0} onClick={() => setPage(page - 1)}>
                ←
              </button>
              <span className="muted small">
                {page * PAGE + 1}–{Math.min(total, (page + 1) * PAGE)} of {total}
              </span>
              <button
                type="button"
                className="btn btn-small"
                disabled={(page + 1) * PAGE >= total}
                onClick={() => setPage(page + 1)}
              >
                →
              </button>
            </div>
          )
        }
      >
        {rows.length === 0 ? (
          <Empty icon="✎" title="No prompts yet">
            Type a few above or upload a JSONL file.
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
                    <td className="clip">{r.text}</td>
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

      <Card
        title={
          <>
            Tasks <span className="count">{tasks.data?.total ?? 0}</span>
          </>
        }
      >
        {(tasks.data?.tasks.length ?? 0) === 0 ? (
          <Empty icon="☰" title="No tasks yet">
            Select prompts above and create tasks; labelers pick them up in order.
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
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
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

// ---------------------------------------------------------------- screening test

export function AdminScreening() {
  const toast = useToast();
  const gold = useLoad(() => api.gold());
  const settings = useLoad(() => api.settings());
  const [chosen, setChosen] = useState<Set<number> | null>(null);
  const [threshold, setThreshold] = useState<number | null>(null);
  const [prompt, setPrompt] = useState('');
  const [responses, setResponses] = useState('');
  const [ranking, setRanking] = useState('');
  const [error, setError] = useState<unknown>(null);

  const items: GoldRow[] = gold.data?.gold ?? [];
  const inTest = chosen ?? new Set(items.filter((g) => g.inScreening).map((g) => g.id));
  const thr = threshold ?? settings.data?.settings.screeningPassThreshold ?? 0.75;

  const save = async () => {
    setError(null);
    try {
      await api.setScreening([...inTest], thr);
      toast(`Screening test saved: ${inTest.size} item${inTest.size === 1 ? '' : 's'}`);
      setChosen(null);
      gold.reload();
    } catch (e) {
      setError(e);
    }
  };

  const addGold = async () => {
    setError(null);
    try {
      const rs = responses
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      const rank = ranking
        .split(/[\s,>]+/)
        .filter(Boolean)
        .map((x) => (/^[A-Ia-i]$/.test(x) ? x.toUpperCase().charCodeAt(0) - 65 : Number(x)));
      await api.addGold({ prompt, responses: rs, ranking: rank });
      setPrompt('');
      setResponses('');
      setRanking('');
      toast('Gold item added');
      gold.reload();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Screening test</h1>
          <p className="lede">
            Gold items with reference rankings. Labelers rank them blind; their pairwise agreement must reach the
            threshold.
          </p>
        </div>
      </div>
      <ErrorBox error={error} />
      <Card
        title={
          <>
            Gold items <span className="count">{items.length}</span>
          </>
        }
        actions={
          <div className="row gap">
            <label className="inline-field">
              Pass at
              <input
                type="number"
                min={0}
                max={100}
                step={5}
                value={Math.round(thr * 100)}
                onChange={(e) => setThreshold(Number(e.target.value) / 100)}
                data-testid="threshold"
              />
              %
            </label>
            <button
              type="button"
              className="btn btn-primary"
              disabled={inTest.size === 0}
              onClick={() => void save()}
              data-testid="save-screening"
            >
              Save test ({inTest.size})
            </button>
          </div>
        }
      >
        {items.length === 0 ? (
          <Empty icon="★" title="No gold items yet">
            Add one below, or upload a JSONL file of kind “gold” under Prompts &amp; tasks.
          </Empty>
        ) : (
          <ul className="gold-list">
            {items.map((g) => (
              <li key={g.id} className={inTest.has(g.id) ? 'on' : ''}>
                <label className="check">
                  <input
                    type="checkbox"
                    checked={inTest.has(g.id)}
                    data-testid={`gold-${g.id}`}
                    onChange={() => {
                      const next = new Set(inTest);
                      if (next.has(g.id)) next.delete(g.id);
                      else next.add(g.id);
                      setChosen(next);
                    }}
                  />
                  <span className="gold-prompt">{g.prompt}</span>
                </label>
                <div className="muted small">
                  {g.responses.length} responses · reference{' '}
                  {g.ranking.map((i) => String.fromCharCode(65 + i)).join(' > ')}
                </div>
              </li>
            ))}
          </ul>
        )}
      </Card>
      <Card title="Add a gold item">
        <div className="grid-2">
          <label className="field">
            <span className="field-label">Prompt</span>
            <textarea rows={3} value={prompt} onChange={(e) => setPrompt(e.target.value)} />
          </label>
          <label className="field">
            <span className="field-label">Responses, one per line (A, B, C, …)</span>
            <textarea rows={3} value={responses} onChange={(e) => setResponses(e.target.value)} />
          </label>
        </div>
        <div className="row between">
          <label className="field grow">
            <span className="field-label">Reference ranking, best first (e.g. “B A D C” or “1,0,3,2”)</span>
            <input value={ranking} onChange={(e) => setRanking(e.target.value)} />
          </label>
          <button
            type="button"
            className="btn btn-primary"
            disabled={!prompt.trim() || !responses.trim() || !ranking.trim()}
            onClick={() => void addGold()}
          >
            Add gold item
          </button>
        </div>
      </Card>
    </div>
  );
}

// ---------------------------------------------------------------- settings

export function AdminSettings() {
  const toast = useToast();
  const loaded = useLoad(() => Promise.all([api.settings(), api.models()]));
  const [s, setS] = useState<Settings | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (loaded.data) setS(loaded.data[0].settings);
  }, [loaded.data]);
  if (!s) return <div className="page center">{loaded.error ? <ErrorBox error={loaded.error} /> : <Spinner />}</div>;
  const models = [...new Set([...(loaded.data?.[1].models ?? []), s.candidateModel])];
  const set = <K extends keyof Settings>(k: K, v: Settings[K]) => setS({ ...s, [k]: v });

  const save = async () => {
    setError(null);
    try {
      const r = await api.saveSettings(s);
      setS(r.settings);
      toast('Settings saved');
    } catch (e) {
      setError(e);
    }
  };

  return (
    <div className="page narrow">
      <div className="page-head">
        <div>
          <h1>Settings</h1>
          <p className="lede">How ranking tasks are built and shared out, and how often chat asks for comparisons.</p>
        </div>
      </div>
      <ErrorBox error={error} />
      <Card title="Ranking tasks">
        <label className="field">
          <span className="field-label">Candidate source model</span>
          <select
            value={s.candidateModel}
            onChange={(e) => set('candidateModel', e.target.value)}
            data-testid="candidate-model"
          >
            {models.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
          <span className="help">Imported candidates are pooled per model name (JSONL kind “candidates”).</span>
        </label>
        <label className="field">
          <span className="field-label">
            Responses per ranking task (K): <b data-testid="k-value">{s.k}</b>
          </span>
          <input
            type="range"
            min={4}
            max={9}
            value={s.k}
            onChange={(e) => set('k', Number(e.target.value))}
            data-testid="k"
          />
          <div className="ticks" aria-hidden="true">
            {[4, 5, 6, 7, 8, 9].map((x) => (
              <span key={x}>{x}</span>
            ))}
          </div>
          <span className="help">The paper uses K between 4 and 9; each ranking yields K(K−1)/2 pairs.</span>
        </label>
        <div className="grid-2">
          <label className="field">
            <span className="field-label">Overlap: share of tasks given to several labelers</span>
            <PercentInput value={s.overlap} onChange={(v) => set('overlap', v)} testId="overlap" />
          </label>
          <label className="field">
            <span className="field-label">Labelers per overlapping task</span>
            <input
              type="number"
              min={2}
              max={20}
              value={s.overlapLabelers}
              onChange={(e) => set('overlapLabelers', Number(e.target.value))}
            />
          </label>
        </div>
      </Card>
      <Card title="Quality and chat">
        <label className="check">
          <input
            type="checkbox"
            checked={s.screeningRequired}
            onChange={(e) => set('screeningRequired', e.target.checked)}
          />
          Labelers must pass the screening test before real tasks
        </label>
        <div className="grid-2">
          <label className="field">
            <span className="field-label">Gold checks: share of ranking tasks that are gold items</span>
            <PercentInput value={s.goldRate} onChange={(v) => set('goldRate', v)} testId="gold-rate" />
            <span className="help">
              Gold items outside the screening test, shown like any task; they keep each labeler's gold agreement
              current.
            </span>
          </label>
          <label className="field">
            <span className="field-label">Time to submit a task (0 = no limit)</span>
            <NumberWithUnit
              unit="min"
              min={0}
              max={10080}
              value={s.assignmentTimeoutMinutes}
              onChange={(v) => set('assignmentTimeoutMinutes', v)}
              testId="assignment-timeout"
            />
            <span className="help">
              Then the task goes back to the pool; a late answer still counts if nobody else took it.
            </span>
          </label>
        </div>
        <label className="field">
          <span className="field-label">Chat: show two candidates every Nth reply (0 = never)</span>
          <input
            type="number"
            min={0}
            max={1000}
            value={s.chatCompareEvery}
            onChange={(e) => set('chatCompareEvery', Number(e.target.value))}
            data-testid="chat-every"
          />
        </label>
      </Card>
      <div className="actions-bar">
        <span className="muted small">Changes apply to tasks created after saving.</span>
        <button type="button" className="btn btn-primary" onClick={() => void save()} data-testid="save-settings">
          Save settings
        </button>
      </div>
    </div>
  );
}

/** A number field with its unit beside it. */
function NumberWithUnit(props: {
  unit: string;
  min: number;
  max: number;
  value: number;
  onChange: (v: number) => void;
  testId: string;
}) {
  return (
    <div className="row gap">
      <input
        type="number"
        min={props.min}
        max={props.max}
        value={props.value}
        onChange={(e) => props.onChange(Number(e.target.value))}
        data-testid={props.testId}
      />
      <span className="muted">{props.unit}</span>
    </div>
  );
}

/** A share in [0, 1], edited as a whole percentage. */
function PercentInput(props: { value: number; onChange: (v: number) => void; testId: string }) {
  return (
    <NumberWithUnit
      unit="%"
      min={0}
      max={100}
      value={Math.round(props.value * 100)}
      onChange={(v) => props.onChange(v / 100)}
      testId={props.testId}
    />
  );
}

// ---------------------------------------------------------------- people

export function AdminPeople() {
  const toast = useToast();
  const users = useLoad(() => api.users());
  const groups = useLoad(() => api.groups());
  const [u, setU] = useState({ username: '', password: '', role: 'labeler' as 'admin' | 'labeler', group: 'training' });
  const [g, setG] = useState({ name: '', split: 'training' as 'training' | 'heldout' });
  const [error, setError] = useState<unknown>(null);

  const act = async (f: () => Promise<unknown>, msg: string): Promise<boolean> => {
    setError(null);
    try {
      await f();
      toast(msg);
      users.reload();
      groups.reload();
      return true;
    } catch (e) {
      setError(e);
      toast(errorText(e), 'error');
      return false;
    }
  };

  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>People</h1>
          <p className="lede">Labelers belong to a group; a group works on the training or the held-out split.</p>
        </div>
      </div>
      <ErrorBox error={error} />
      <div className="grid-2-1">
        <Card
          title={
            <>
              Users <span className="count">{users.data?.users.length ?? 0}</span>
            </>
          }
        >
          <table className="table">
            <thead>
              <tr>
                <th>User</th>
                <th>Role</th>
                <th>Group</th>
                <th>Screening</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {(users.data?.users ?? []).map((x) => (
                <tr key={x.id} className={x.disabled ? 'disabled' : ''}>
                  <td className="strong">{x.username}</td>
                  <td>
                    <span className={`pill ${x.role === 'admin' ? 'pill-accent' : ''}`}>{x.role}</span>
                  </td>
                  <td>
                    {x.role === 'labeler' ? (
                      <select
                        aria-label={`Group of ${x.username}`}
                        value={x.group ?? ''}
                        onChange={(e) =>
                          void act(() => api.patchUser(x.id, { group: e.target.value }), 'Group changed')
                        }
                      >
                        {(groups.data?.groups ?? []).map((gr) => (
                          <option key={gr.id} value={gr.name}>
                            {gr.name}
                          </option>
                        ))}
                      </select>
                    ) : (
                      <span className="muted">—</span>
                    )}
                  </td>
                  <td>
                    {x.role === 'labeler' &&
                      (x.screeningPassed ? (
                        <span className="pill pill-good">passed</span>
                      ) : (
                        <button
                          type="button"
                          className="btn btn-small"
                          onClick={() =>
                            void act(
                              () => api.patchUser(x.id, { screeningPassed: true }),
                              `${x.username} may label now`,
                            )
                          }
                        >
                          Mark passed
                        </button>
                      ))}
                  </td>
                  <td className="right">
                    <button
                      type="button"
                      className="btn btn-small btn-ghost"
                      onClick={() =>
                        void act(
                          () => api.patchUser(x.id, { disabled: !x.disabled }),
                          `${x.username} ${x.disabled ? 'enabled' : 'disabled'}`,
                        )
                      }
                    >
                      {x.disabled ? 'Enable' : 'Disable'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Card>
        <div className="stack">
          <Card title="Add a user">
            <form
              className="stack"
              onSubmit={(e) => {
                e.preventDefault();
                void act(
                  () =>
                    api.createUser({
                      username: u.username,
                      password: u.password,
                      role: u.role,
                      group: u.role === 'labeler' ? u.group : undefined,
                    }),
                  `Created ${u.username}`,
                ).then((ok) => ok && setU({ ...u, username: '', password: '' }));
              }}
            >
              <label className="field">
                <span className="field-label">Username</span>
                <input
                  value={u.username}
                  autoComplete="off"
                  data-testid="new-username"
                  onChange={(e) => setU({ ...u, username: e.target.value })}
                />
              </label>
              <label className="field">
                <span className="field-label">Password (8+ characters)</span>
                <input
                  type="password"
                  value={u.password}
                  autoComplete="new-password"
                  data-testid="new-password"
                  onChange={(e) => setU({ ...u, password: e.target.value })}
                />
              </label>
              <div className="row gap">
                <label className="field grow">
                  <span className="field-label">Role</span>
                  <select value={u.role} onChange={(e) => setU({ ...u, role: e.target.value as 'admin' | 'labeler' })}>
                    <option value="labeler">labeler</option>
                    <option value="admin">admin</option>
                  </select>
                </label>
                {u.role === 'labeler' && (
                  <label className="field grow">
                    <span className="field-label">Group</span>
                    <select value={u.group} onChange={(e) => setU({ ...u, group: e.target.value })}>
                      {(groups.data?.groups ?? []).map((gr) => (
                        <option key={gr.id} value={gr.name}>
                          {gr.name}
                        </option>
                      ))}
                    </select>
                  </label>
                )}
              </div>
              <button
                type="submit"
                className="btn btn-primary"
                disabled={!u.username || u.password.length < 8}
                data-testid="create-user"
              >
                Create user
              </button>
            </form>
          </Card>
          <Card title="Groups">
            <ul className="plain-list">
              {(groups.data?.groups ?? []).map((gr) => (
                <li key={gr.id}>
                  <span className="strong">{gr.name}</span>
                  <span className={`pill ${gr.split === 'heldout' ? 'pill-warn' : ''}`}>{gr.split}</span>
                </li>
              ))}
            </ul>
            <form
              className="row gap"
              onSubmit={(e) => {
                e.preventDefault();
                void act(() => api.createGroup(g.name, g.split), `Group ${g.name} created`).then(
                  (ok) => ok && setG({ ...g, name: '' }),
                );
              }}
            >
              <input
                placeholder="new group"
                aria-label="Group name"
                value={g.name}
                onChange={(e) => setG({ ...g, name: e.target.value })}
              />
              <select
                aria-label="Split"
                value={g.split}
                onChange={(e) => setG({ ...g, split: e.target.value as 'training' | 'heldout' })}
              >
                <option value="training">training</option>
                <option value="heldout">heldout</option>
              </select>
              <button type="submit" className="btn" disabled={!g.name}>
                Add
              </button>
            </form>
          </Card>
        </div>
      </div>
    </div>
  );
}
