/** Admin settings: candidate source, K, overlap, chat comparisons, gold rate, assignment time limit. */
import { useEffect, useState } from 'react';
import { api, type Settings } from '../../api.js';
import { Card, ErrorBox, Spinner, useLoad, useToast } from '../../ui.js';

export function AdminSettings() {
  const toast = useToast();
  const loaded = useLoad(() => Promise.all([api.settings(), api.models()]));
  const [s, setS] = useState<Settings | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (loaded.data) setS(loaded.data[0].settings);
  }, [loaded.data]);
  if (!s) return <div className="page center">{loaded.error ? <ErrorBox error={loaded.error} /> : <Spinner />}</div>;
  // The saved sources stay listed while unticked (an imported pool may be used up), until the next visit.
  const models = [
    ...new Set([
      ...(loaded.data?.[1].models ?? []),
      ...(loaded.data?.[0].settings.candidateModels ?? []),
      ...s.candidateModels,
    ]),
  ];
  const served = loaded.data?.[1].served ?? [];
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
        <fieldset className="field plain" data-testid="candidate-models">
          <legend className="field-label">Ranking candidates from</legend>
          {models.map((m) => {
            const checked = s.candidateModels.includes(m);
            return (
              <label key={m} className="check">
                <input
                  type="checkbox"
                  checked={checked}
                  // The last source stays: a ranking task needs candidates from somewhere.
                  disabled={checked && s.candidateModels.length === 1}
                  onChange={(e) =>
                    set(
                      'candidateModels',
                      e.target.checked ? [...s.candidateModels, m] : s.candidateModels.filter((x) => x !== m),
                    )
                  }
                  data-testid={`candidate-model-${m}`}
                />
                {m}
              </label>
            );
          })}
          <span className="help" data-testid="candidate-split">
            {splitText(s.k, s.candidateModels.length)} Served versions are sampled on demand; other names are imported
            candidates pooled per model name (JSONL kind “candidates”).
          </span>
        </fieldset>
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
        <label className="field">
          <span className="field-label">Screening attempts per labeler (0 = no limit)</span>
          <input
            type="number"
            min={0}
            max={100}
            value={s.screeningMaxAttempts}
            onChange={(e) => set('screeningMaxAttempts', Number(e.target.value))}
            data-testid="screening-attempts"
          />
          <span className="help">
            Labelers see pass or fail, never a score. After the last failed attempt, waive screening for them under
            People.
          </span>
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
        <fieldset className="field plain" data-testid="chat-models">
          <legend className="field-label">Chat answers from</legend>
          {served.length === 0 ? (
            <span className="help">
              Only “{loaded.data?.[1].chatModel}” answers: start the server with --model DIR (repeatable) to serve
              versions side by side.
            </span>
          ) : (
            served.map((m) => (
              <label key={m.name} className="check">
                <input
                  type="checkbox"
                  checked={s.chatModels.includes(m.name)}
                  onChange={(e) =>
                    set(
                      'chatModels',
                      e.target.checked ? [...s.chatModels, m.name] : s.chatModels.filter((x) => x !== m.name),
                    )
                  }
                />
                {m.name}{' '}
                <span className="muted small">
                  ({(m.bytes / 2 ** 20).toFixed(0)} MiB{m.loaded ? ', loaded' : ''})
                </span>
              </label>
            ))
          )}
          <span className="help">
            None ticked: the first served version. With two or more, a comparison turn shows replies of two different
            versions (counted apart from the blind evals under Evals).
          </span>
        </fieldset>
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
      <Card title="Labeling guidelines">
        <label className="field">
          <span className="field-label">
            Shown beside every task (blank lines separate paragraphs; "- " starts a list item)
          </span>
          <textarea
            rows={8}
            value={s.guidelines}
            onChange={(e) => set('guidelines', e.target.value)}
            data-testid="guidelines-input"
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

/** How a task's K candidates are shared out among the chosen sources (as distinctCandidates does). */
function splitText(k: number, sources: number): string {
  if (sources <= 1) return `Each task's ${k} candidates come from this source.`;
  if (sources >= k) return `Each task gets one candidate from each of ${k} of these ${sources} versions, in turn.`;
  const low = Math.floor(k / sources);
  const shares = k % sources === 0 ? `${low} each` : `${low} or ${low + 1} each, in turn`;
  return `Each task's ${k} candidates are split across the ${sources} sources (${shares}), shown in a random order.`;
}
