/**
 * Admin → Evals: blind A/B evaluations between model versions on held-out prompts (answered by the held-out group),
 * their win rates with 95 % intervals, the Elo / Bradley–Terry table, the paper's Figure 1 against a baseline,
 * and chat comparisons in a table of their own.
 */
import { useState } from 'react';
import { api, type EvalRatings } from '../../api.js';
import { Card, Empty, ErrorBox, pct, Spinner, useLoad, useToast } from '../../ui.js';

const interval = (w: { lo: number; hi: number; n: number }) => (w.n === 0 ? '—' : `${pct(w.lo)} – ${pct(w.hi)}`);

export function AdminEvals() {
  const toast = useToast();
  const [baseline, setBaseline] = useState<string | undefined>(undefined);
  const models = useLoad(() => api.models());
  const evals = useLoad(() => api.evals());
  const ratings = useLoad(() => api.evalRatings(baseline), [baseline]);
  const names = models.data?.models ?? [];
  const [a, setA] = useState('');
  const [b, setB] = useState('');
  const [labelers, setLabelers] = useState(1);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const create = async () => {
    setError(null);
    setBusy(true);
    try {
      const r = await api.createEval({ modelA: a || names[0], modelB: b || names[1], labelers });
      const left = r.dropped.length > 0 ? `; ${r.dropped.length} prompt(s) left out: the same or an empty answer` : '';
      toast(`Eval #${r.id}: ${r.tasks} A/B tasks for the held-out group (${r.reused} reused${left})`);
      evals.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Evals</h1>
          <p className="lede">
            Blind A/B comparisons of two model versions on held-out prompts, answered by the held-out labeler group. A
            tie counts as half a win; intervals are 95 %.
          </p>
        </div>
      </div>
      <Card title="New blind A/B eval">
        <ErrorBox error={error} />
        <div className="row gap">
          <ModelSelect label="Model A" value={a || names[0] || ''} names={names} onChange={setA} testId="eval-a" />
          <ModelSelect label="Model B" value={b || names[1] || ''} names={names} onChange={setB} testId="eval-b" />
          <label className="field">
            <span className="field-label">Labelers per prompt</span>
            <input
              type="number"
              min={1}
              max={20}
              value={labelers}
              onChange={(e) => setLabelers(Number(e.target.value))}
              data-testid="eval-labelers"
            />
          </label>
          <button
            type="button"
            className="btn btn-primary"
            disabled={busy || names.length < 2}
            onClick={() => void create()}
            data-testid="create-eval"
          >
            {busy ? 'Sampling…' : 'Create on all held-out prompts'}
          </button>
        </div>
        <span className="help">
          Each prompt gets one answer from each model; which side a labeler sees first is drawn per task. A prompt
          already compared for the same two models is reused, not labeled again. With two or more labelers per prompt
          the eval shows how often they agree. A prompt on which the two models keep giving the same or an empty answer
          is left out.
        </span>
      </Card>
      <Card title="Evals">
        {evals.error ? <ErrorBox error={evals.error} /> : null}
        {!evals.data ? (
          <Spinner />
        ) : evals.data.evals.length === 0 ? (
          <Empty title="No evals yet" />
        ) : (
          <table className="table" data-testid="evals-table">
            <thead>
              <tr>
                <th>#</th>
                <th>A vs B</th>
                <th className="num">Answered</th>
                <th className="num">A wins</th>
                <th className="num">95 % interval</th>
                <th className="num">W / T / L</th>
                <th className="num">Agreement</th>
              </tr>
            </thead>
            <tbody>
              {evals.data.evals.map((e) => (
                <tr key={e.id}>
                  <td>{e.id}</td>
                  <td>
                    {e.modelA} vs {e.modelB}
                  </td>
                  <td className="num">
                    {e.done} / {e.tasks}
                  </td>
                  <td className="num">{e.result.n ? pct(e.result.winRate) : '—'}</td>
                  <td className="num">{interval(e.result)}</td>
                  <td className="num">
                    {e.result.wins} / {e.result.ties} / {e.result.losses}
                  </td>
                  <td
                    className="num"
                    title={`${e.agreement.pairs} pairs of answers on ${e.agreement.tasks} prompts`}
                    data-testid={`eval-agreement-${e.id}`}
                  >
                    {e.agreement.rate === null ? '—' : pct(e.agreement.rate)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      {ratings.error ? <ErrorBox error={ratings.error} /> : null}
      {ratings.data ? <Ratings r={ratings.data} onBaseline={setBaseline} /> : <Spinner />}
    </div>
  );
}

function Ratings(props: { r: EvalRatings; onBaseline: (m: string) => void }) {
  const { r } = props;
  return (
    <>
      <Card
        title="Win rate against a baseline (Figure 1)"
        actions={
          r.elo.length > 0 ? (
            <ModelSelect
              label="Baseline"
              value={r.baseline ?? ''}
              names={r.elo.map((e) => e.model).sort()}
              onChange={props.onBaseline}
              testId="eval-baseline"
            />
          ) : null
        }
      >
        {r.vsBaseline.length === 0 ? (
          <Empty title="No held-out A/B answers yet" />
        ) : (
          <img
            className="chart"
            src={api.evalFigureUrl(r.baseline ?? undefined)}
            alt={`Win rate of each version against ${r.baseline}, with 95 % intervals`}
            data-testid="eval-figure"
          />
        )}
      </Card>
      <Card title="Elo (Bradley–Terry) across versions">
        {r.elo.length === 0 ? (
          <Empty title="No held-out A/B answers yet" />
        ) : (
          <table className="table" data-testid="elo-table">
            <thead>
              <tr>
                <th>Version</th>
                <th className="num">Elo</th>
                <th className="num">95 % interval</th>
                <th className="num">Comparisons</th>
              </tr>
            </thead>
            <tbody>
              {r.elo.map((e) => (
                <tr key={e.model}>
                  <td>{e.model}</td>
                  <td className="num">{Math.round(e.rating)}</td>
                  <td className="num">
                    {Math.round(e.lo)} – {Math.round(e.hi)}
                  </td>
                  <td className="num">{e.games}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <span className="help">
          Fitted from every blind A/B answer on held-out prompts; mean 1000, 400 points = 10:1 odds; intervals from 200
          bootstrap resamples.
        </span>
      </Card>
      <Card title="Chat comparisons (reported apart)">
        {r.chat.length === 0 ? (
          <Empty title="No chat comparisons between two versions">
            {r.chatSameModel > 0 ? `${r.chatSameModel} between two samples of one version.` : null}
          </Empty>
        ) : (
          <table className="table" data-testid="chat-table">
            <thead>
              <tr>
                <th>A vs B</th>
                <th className="num">A wins</th>
                <th className="num">95 % interval</th>
                <th className="num">W / T / L</th>
                <th className="num">Agreement</th>
              </tr>
            </thead>
            <tbody>
              {r.chat.map((c) => (
                <tr key={`${c.modelA}/${c.modelB}`}>
                  <td>
                    {c.modelA} vs {c.modelB}
                  </td>
                  <td className="num">{pct(c.winRate)}</td>
                  <td className="num">{interval(c)}</td>
                  <td className="num">
                    {c.wins} / {c.ties} / {c.losses}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <span className="help">
          Users' choices between two replies in the chat playground: their own prompts, not the held-out set, so they
          never enter the figures above.
          {r.chatSameModel > 0 ? ` ${r.chatSameModel} more compared two samples of one version.` : ''}
        </span>
      </Card>
    </>
  );
}

function ModelSelect(props: {
  label: string;
  value: string;
  names: string[];
  onChange: (m: string) => void;
  testId: string;
}) {
  return (
    <label className="field">
      <span className="field-label">{props.label}</span>
      <select value={props.value} onChange={(e) => props.onChange(e.target.value)} data-testid={props.testId}>
        {props.names.map((m) => (
          <option key={m} value={m}>
            {m}
          </option>
        ))}
      </select>
    </label>
  );
}
