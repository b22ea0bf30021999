/** Admin screening test: gold items, which of them form the test, and the pass threshold. */
import { useState } from 'react';
import { api, type GoldRow } from '../../api.js';
import { rankingText } from '../../ranker.js';
import { Card, Empty, ErrorBox, useLoad, useToast } from '../../ui.js';

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

  // Archiving is the delete: the item leaves the test and live checks; its answers are kept.
  const archive = async (id: number, archived: boolean) => {
    setError(null);
    try {
      await api.patchGold(id, { archived });
      toast(archived ? 'Gold item archived' : 'Gold item restored');
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
                  {g.responses.length} responses · reference {rankingText(g.ranking)}
                  {g.archived ? ' · archived' : ''}{' '}
                  <button
                    type="button"
                    className="btn btn-small"
                    data-testid={`gold-archive-${g.id}`}
                    onClick={() => void archive(g.id, !g.archived)}
                  >
                    {g.archived ? 'Restore' : 'Archive'}
                  </button>
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
