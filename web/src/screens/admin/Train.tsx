/**
 * Admin → Train: queue a training job (kind, base model from the registry, a reward model for ppo/grpo, the
 * trainer's config as a form generated from its schema, defaults shown) and watch the jobs (state, progress bar and
 * ETA, loss curves, log tail, cancel). Jobs run in a worker process; this screen polls the API.
 */
import { useEffect, useState } from 'react';
import { ApiError, api, type JobKindInfo, type JobRow } from '../../api.js';
import { Card, Empty, ErrorBox, Spinner, useLoad, useToast } from '../../ui.js';

interface FieldSchema {
  type?: string;
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  anyOf?: FieldSchema[];
  const?: unknown;
}

// The server draws these series (src/server/routes/jobs.ts CHART_METRICS); shown when the job has any of them.
const CHART_KEYS = {
  loss: /(^|\/)loss$/,
  reward: /(^|\/)(reward|rlhf_reward|scores|margins|accuracy|accuracies)$/,
};

const STATE_PILL: Record<string, string> = {
  queued: 'pill',
  running: 'pill pill-accent',
  done: 'pill pill-good',
  failed: 'pill pill-bad',
  cancelled: 'pill pill-warn',
};

export const etaText = (s: number | null | undefined) =>
  s === null || s === undefined
    ? ''
    : s < 60
      ? `${Math.round(s)}s`
      : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;

// A config field's value from its input's text: numbers and JSON where the schema wants them, "" means default.
function parseField(s: FieldSchema, text: string): unknown {
  if (text.trim() === '') return undefined;
  const types = s.anyOf ? s.anyOf.map((x) => x.type) : [s.type];
  if (types.includes('null') && text.trim() === 'null') return null;
  if (types.includes('number') || types.includes('integer')) return Number(text);
  if (types.includes('array'))
    return text
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  return text;
}

function ConfigField(props: {
  name: string;
  schema: FieldSchema;
  value: unknown;
  error?: string;
  onChange: (v: unknown) => void;
}) {
  const { name, schema: s } = props;
  const choices = s.anyOf?.every((x) => 'const' in x) ? s.anyOf.map((x) => String(x.const)) : null;
  const def = JSON.stringify(s.default);
  let input: React.ReactNode;
  if (s.type === 'boolean') {
    input = (
      <input
        type="checkbox"
        checked={(props.value ?? s.default) === true}
        onChange={(e) => props.onChange(e.target.checked === s.default ? undefined : e.target.checked)}
        aria-label={name}
        data-testid={`cfg-${name}`}
      />
    );
  } else if (choices) {
    input = (
      <select
        value={String(props.value ?? s.default)}
        onChange={(e) => props.onChange(e.target.value === String(s.default) ? undefined : e.target.value)}
        aria-label={name}
        data-testid={`cfg-${name}`}
      >
        {choices.map((c) => (
          <option key={c}>{c}</option>
        ))}
      </select>
    );
  } else {
    input = (
      <input
        value={
          props.value === undefined ? '' : Array.isArray(props.value) ? props.value.join(',') : String(props.value)
        }
        placeholder={def}
        onChange={(e) => props.onChange(parseField(s, e.target.value))}
        aria-label={name}
        data-testid={`cfg-${name}`}
      />
    );
  }
  return (
    <div className="field">
      <span className="field-label">
        {name} <span className="muted small">default {def}</span>
      </span>
      {input}
      {props.error ? (
        <span className="help" style={{ color: 'var(--bad)' }} data-testid={`cfg-error-${name}`}>
          {props.error}
        </span>
      ) : (
        s.description && <span className="help">{s.description}</span>
      )}
    </div>
  );
}

function NewJob(props: { kinds: JobKindInfo[]; finished: number; onQueued: () => void }) {
  const toast = useToast();
  // Reloaded whenever a job finishes, so its new version can be picked next (an RM for the PPO job that follows).
  const models = useLoad(() => api.registry(), [props.finished]);
  const [kind, setKind] = useState('sft');
  const [base, setBase] = useState<number | null>(null);
  const [reward, setReward] = useState<number | null>(null);
  const [config, setConfig] = useState<Record<string, unknown>>({});
  const [ptx, setPtx] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const info = props.kinds.find((k) => k.kind === kind);
  const all = models.data?.models ?? [];
  const lms = all.filter((m) => m.head === 'causal');
  const rms = all.filter((m) => m.head === 'scalar');
  const fields = (info?.schema.properties ?? {}) as Record<string, FieldSchema>;
  const count = Object.keys(fields).length;
  const mixesPtx = info?.groups.some((g) => g.withPtx) ?? false;
  // The ptx fields mean something only with a corpus: hidden (and not sent) without one.
  const shown = (info?.groups ?? []).filter((g) => !g.withPtx || ptx.trim() !== '');
  const sent = new Set(shown.flatMap((g) => g.fields));
  const fieldsOf = (names: string[]) =>
    names.map((name) => (
      <ConfigField
        key={`${kind}-${name}`}
        name={name}
        schema={fields[name]}
        value={config[name]}
        error={errors[name]}
        onChange={(v) => setConfig({ ...config, [name]: v })}
      />
    ));

  const submit = async () => {
    setError(null);
    setErrors({});
    try {
      const body = {
        kind,
        baseModel: base ?? lms.at(-1)?.id ?? 0,
        ...(info?.needsRewardModel ? { rewardModel: reward ?? rms.at(-1)?.id ?? 0 } : {}),
        config: Object.fromEntries(Object.entries(config).filter(([k, v]) => v !== undefined && sent.has(k))),
        ...(mixesPtx && ptx.trim() ? { ptx: ptx.trim() } : {}),
      };
      const r = await api.createJob(body);
      toast(`Job ${r.id} queued`);
      props.onQueued();
    } catch (e) {
      const field = e instanceof ApiError ? (e.details as { field?: string } | undefined)?.field : undefined;
      if (field) setErrors({ [field.replace(/^config\./, '')]: (e as Error).message });
      setError(e);
    }
  };

  return (
    <Card title="New training job">
      <ErrorBox error={error} />
      <div className="grid-2">
        <label className="field">
          <span className="field-label">Kind</span>
          <select
            value={kind}
            onChange={(e) => {
              setKind(e.target.value);
              setConfig({});
              setPtx('');
              setErrors({});
            }}
            data-testid="job-kind"
          >
            {props.kinds.map((k) => (
              <option key={k.kind} value={k.kind}>
                {k.kind} — trains on {k.data}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span className="field-label">
            {info?.needsRewardModel ? 'Policy (usually the SFT model)' : 'Base model'}
          </span>
          <select
            value={base ?? lms.at(-1)?.id ?? ''}
            onChange={(e) => setBase(Number(e.target.value))}
            data-testid="job-base"
          >
            {lms.map((m) => (
              <option key={m.id} value={m.id}>
                #{m.id} {m.name} ({m.kind})
              </option>
            ))}
          </select>
          {errors.baseModel && <span className="help">{errors.baseModel}</span>}
        </label>
        {info?.needsRewardModel && (
          <label className="field">
            <span className="field-label">Reward model</span>
            <select
              value={reward ?? rms.at(-1)?.id ?? ''}
              onChange={(e) => setReward(Number(e.target.value))}
              data-testid="job-reward"
            >
              {rms.map((m) => (
                <option key={m.id} value={m.id}>
                  #{m.id} {m.name}
                </option>
              ))}
            </select>
            {rms.length === 0 && <span className="help">No reward model yet: train one with an rm job.</span>}
          </label>
        )}
      </div>
      {mixesPtx && (
        <label className="field">
          <span className="field-label">Pretraining corpus for PPO-ptx (optional)</span>
          <input
            value={ptx}
            placeholder="/path/on/the/worker/corpus.txt"
            onChange={(e) => setPtx(e.target.value)}
            data-testid="job-ptx"
          />
          <span className="help">
            A text or JSONL file on the worker's machine; its LM loss is mixed into PPO (the paper's PPO-ptx), weighed
            by ptxCoef. Empty: plain PPO.
          </span>
          {errors.ptx && <span className="help">{errors.ptx}</span>}
        </label>
      )}
      <details>
        <summary>Config ({count} fields; empty = default)</summary>
        {shown.map((g) =>
          g.advanced ? (
            <details key={g.title} className="config-group" data-testid={`cfg-group-${g.title}`}>
              <summary>
                {g.title} ({g.fields.length})
              </summary>
              <div className="grid-2">{fieldsOf(g.fields)}</div>
            </details>
          ) : (
            <fieldset key={g.title} className="field plain config-group" data-testid={`cfg-group-${g.title}`}>
              <legend className="field-label">{g.title}</legend>
              <div className="grid-2">{fieldsOf(g.fields)}</div>
            </fieldset>
          ),
        )}
      </details>
      <button
        type="button"
        className="btn btn-primary"
        onClick={submit}
        disabled={lms.length === 0}
        data-testid="job-submit"
      >
        Queue job
      </button>
    </Card>
  );
}

function JobView(props: { id: number; onChange: () => void }) {
  const [tick, setTick] = useState(0);
  const job = useLoad(() => api.job(props.id), [props.id, tick]);
  const j = job.data?.job;
  const live = j?.state === 'running' || j?.state === 'queued';
  // biome-ignore lint/correctness/useExhaustiveDependencies: each load (tick) arms the next poll
  useEffect(() => {
    if (!live) return;
    const t = setTimeout(() => setTick((x) => x + 1), 2000);
    return () => clearTimeout(t);
  }, [live, tick]);
  if (!j) return job.error ? <ErrorBox error={job.error} /> : <Spinner />;
  const cancel = async () => {
    await api.cancelJob(j.id);
    setTick((x) => x + 1);
    props.onChange();
  };
  return (
    <Card
      title={`Job ${j.id}: ${j.kind}`}
      actions={
        live && (
          <button
            type="button"
            className="btn btn-small"
            onClick={cancel}
            disabled={j.cancelRequested}
            data-testid="job-cancel"
          >
            {j.cancelRequested ? 'Cancelling…' : 'Cancel'}
          </button>
        )
      }
    >
      <p className="small muted">
        <span className={STATE_PILL[j.state]} data-testid="job-state">
          {j.state}
        </span>{' '}
        attempt {j.attempts} of {j.maxAttempts} · {j.dataCount} records, snapshot {j.dataHash.slice(0, 12)}
        {j.model !== null && ` · model #${j.model}`}
      </p>
      {j.error && <div className="error-box">{j.error}</div>}
      {(['loss', 'reward'] as const)
        .filter((of) => j.metrics.some((r) => Object.keys(r).some((k) => CHART_KEYS[of].test(k))))
        .map((of) => (
          <img
            key={of}
            src={`/api/admin/jobs/${j.id}/chart.svg?of=${of}&n=${j.metrics.length}`}
            alt={`${of} curves`}
            data-testid={`job-chart-${of}`}
          />
        ))}
      <pre className="small" style={{ maxHeight: 260, overflow: 'auto', whiteSpace: 'pre-wrap' }} data-testid="job-log">
        {j.log.split('\n').slice(-40).join('\n') || 'no output yet'}
      </pre>
    </Card>
  );
}

function JobTable(props: { jobs: JobRow[]; selected: number | null; onSelect: (id: number) => void }) {
  if (props.jobs.length === 0) return <Empty title="No jobs yet">Queue one above.</Empty>;
  return (
    <table className="table" data-testid="jobs-table">
      <thead>
        <tr>
          <th>#</th>
          <th>Kind</th>
          <th>State</th>
          <th>Progress</th>
          <th>Model</th>
        </tr>
      </thead>
      <tbody>
        {props.jobs.map((j) => {
          const p = j.progress;
          const frac = p && p.total > 0 ? p.step / p.total : 0;
          return (
            <tr
              key={j.id}
              onClick={() => props.onSelect(j.id)}
              style={{ cursor: 'pointer' }}
              data-testid={`job-${j.id}`}
            >
              <td>{props.selected === j.id ? <b>{j.id}</b> : j.id}</td>
              <td>{j.kind}</td>
              <td>
                <span className={STATE_PILL[j.state]}>{j.state}</span>
              </td>
              <td style={{ minWidth: 200 }}>
                {p ? (
                  <div className="progress-row" style={{ marginBottom: 0 }}>
                    <div
                      className="progress"
                      role="progressbar"
                      aria-valuemin={0}
                      aria-valuemax={p.total}
                      aria-valuenow={p.step}
                    >
                      <div style={{ width: `${Math.round(frac * 100)}%` }} />
                    </div>
                    <span className="small">
                      {p.step}/{p.total}
                      {j.state === 'running' && p.etaS !== null && ` · ETA ${etaText(p.etaS)}`}
                    </span>
                  </div>
                ) : (
                  <span className="muted small">—</span>
                )}
              </td>
              <td>{j.model === null ? '—' : `#${j.model}`}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function AdminTrain() {
  const kinds = useLoad(() => api.jobKinds());
  const [tick, setTick] = useState(0);
  const jobs = useLoad(() => api.jobs(), [tick]);
  const [selected, setSelected] = useState<number | null>(null);
  const list = jobs.data?.jobs ?? [];
  const active = list.some((j) => j.state === 'running' || j.state === 'queued');
  // biome-ignore lint/correctness/useExhaustiveDependencies: each load (tick) arms the next poll
  useEffect(() => {
    if (!active) return;
    const t = setTimeout(() => setTick((x) => x + 1), 2000);
    return () => clearTimeout(t);
  }, [active, tick]);
  const shown = selected ?? list[0]?.id ?? null;
  const finished = list.filter((j) => j.state === 'done').length;
  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Train</h1>
          <p className="lede">
            Train SFT, reward models, PPO (-ptx), DPO or GRPO on the current labels. Each job snapshots its data and
            runs in a worker process; its model joins the registry when it is done.
          </p>
        </div>
      </div>
      <ErrorBox error={kinds.error ?? jobs.error} />
      {kinds.data ? (
        <NewJob kinds={kinds.data.kinds} finished={finished} onQueued={() => setTick((x) => x + 1)} />
      ) : (
        <Spinner />
      )}
      <Card title="Jobs">
        <JobTable jobs={list} selected={shown} onSelect={setSelected} />
      </Card>
      {shown !== null && <JobView key={shown} id={shown} onChange={() => setTick((x) => x + 1)} />}
    </div>
  );
}
