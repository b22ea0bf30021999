/** Admin overview: dataset sizes, agreement, per-labeler throughput and quality, and the JSONL exports. */
import { useState } from 'react';
import { api } from '../../api.js';
import { Card, Empty, ErrorBox, pct, Spinner, Stat, useLoad } from '../../ui.js';
import { SplitPicker } from './SplitPicker.js';

const EXPORTS: { kind: string; what: string }[] = [
  { kind: 'demonstrations', what: 'SFT data: prompt + completion' },
  { kind: 'rankings', what: 'K-way rankings with scores and flags' },
  { kind: 'pairwise', what: 'chosen / rejected pairs for the RM' },
  { kind: 'prompts', what: 'PPO prompts' },
  { kind: 'eval', what: 'A/B and chat comparisons' },
];

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
