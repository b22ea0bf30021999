/** Admin → Models: the registry's versions with their lineage, and registering an existing model folder. */
import { useState } from 'react';
import { api, type ModelVersion } from '../../api.js';
import { Card, Empty, ErrorBox, Spinner, useLoad, useToast } from '../../ui.js';

const shortHash = (h: string | null) => (h ? h.slice(0, 10) : '—');
const paramsText = (n: number | null) =>
  n === null ? '—' : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} k` : String(n);

/** Where a registry path is on this server: a relative one is inside the models folder. */
function folderOnServer(path: string, modelsDir: string | null): string {
  return path.startsWith('/') || modelsDir === null ? path : `${modelsDir}/${path}`;
}

/** "base ← sft-3 ← ppo-7": a version's ancestry by name, oldest first. */
export function lineageText(m: ModelVersion, byId: Map<number, ModelVersion>): string {
  return [...m.lineage]
    .reverse()
    .map((id) => byId.get(id)?.name ?? `#${id}`)
    .concat(m.name)
    .join(' → ');
}

export function AdminModels() {
  const toast = useToast();
  const list = useLoad(() => api.registry());
  const [path, setPath] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>(null);
  const models = list.data?.models ?? [];
  const byId = new Map(models.map((m) => [m.id, m]));

  const register = async () => {
    setError(null);
    try {
      const r = await api.registerModel(path.trim(), name.trim() || undefined);
      toast(`Registered ${r.model.name}`);
      setPath('');
      setName('');
      list.reload();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Models</h1>
          <p className="lede">
            Every model version: where it came from (lineage, data snapshot, config) and how it ended.
          </p>
        </div>
        <button type="button" className="btn" onClick={list.reload}>
          Refresh
        </button>
      </div>
      <ErrorBox error={list.error} />
      <Card title="Versions">
        {list.data?.modelsDir && models.some((m) => !m.path.startsWith('/')) && (
          <p className="small muted" data-testid="models-dir">
            Folders without a leading / are inside the shared models folder, which this server reads at{' '}
            <code>{list.data.modelsDir}</code> (each worker names it with its own --models).
          </p>
        )}
        {!list.data ? (
          <Spinner />
        ) : models.length === 0 ? (
          <Empty title="No models yet">Register a model folder below, or start the server with --model DIR.</Empty>
        ) : (
          <table className="table" data-testid="models-table">
            <thead>
              <tr>
                <th>#</th>
                <th>Name</th>
                <th>Kind</th>
                <th>Lineage</th>
                <th>Data</th>
                <th>Params</th>
                <th>Final metrics</th>
              </tr>
            </thead>
            <tbody>
              {[...models].reverse().map((m) => (
                <tr key={m.id} data-testid={`model-${m.id}`}>
                  <td>{m.id}</td>
                  <td>
                    <div className="strong">{m.name}</div>
                    <div className="small muted clip" title={folderOnServer(m.path, list.data?.modelsDir ?? null)}>
                      {m.path}
                    </div>
                  </td>
                  <td>
                    <span className={`pill ${m.head === 'scalar' ? 'pill-warn' : 'pill-accent'}`}>{m.kind}</span>
                    {m.head === 'scalar' && <div className="small muted">reward model</div>}
                  </td>
                  <td className="small">{lineageText(m, byId)}</td>
                  <td className="small" title={m.dataHash ?? ''}>
                    {shortHash(m.dataHash)}
                    {m.jobId !== null && <div className="muted">job {m.jobId}</div>}
                  </td>
                  <td>{paramsText(m.params)}</td>
                  <td className="small">
                    {Object.entries(m.metrics ?? {})
                      .filter(([k, v]) => k !== 'step' && typeof v === 'number' && /loss|reward|acc/.test(k))
                      .slice(0, 4)
                      .map(([k, v]) => (
                        <div key={k}>
                          {k} <b>{(v as number).toFixed(4)}</b>
                        </div>
                      ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      <Card title="Register a model folder">
        <ErrorBox error={error} />
        <div className="grid-2">
          <label className="field">
            <span className="field-label">Folder on the server (config.json, model.safetensors, tokenizer.json)</span>
            <input
              value={path}
              onChange={(e) => setPath(e.target.value)}
              placeholder="/data/models/gpt2"
              data-testid="register-path"
            />
          </label>
          <label className="field">
            <span className="field-label">Name (default: the folder's name)</span>
            <input value={name} onChange={(e) => setName(e.target.value)} data-testid="register-name" />
          </label>
        </div>
        <button
          type="button"
          className="btn btn-primary"
          disabled={!path.trim()}
          onClick={register}
          data-testid="register"
        >
          Register
        </button>
      </Card>
    </div>
  );
}
