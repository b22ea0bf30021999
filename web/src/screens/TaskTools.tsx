/**
 * Beside every task: the admin's guidelines, "skip" (the task goes to someone else, never back to you) and
 * "report this prompt" (with a reason; admins see it in the review queue, and you move on).
 */
import { useMemo, useState } from 'react';
import { api, newKey } from '../api.js';
import { clearDrafts, ErrorBox, useLoad } from '../ui.js';

/** Guidelines text: blank lines separate paragraphs; lines starting "- " are list items. */
export function Guidelines(props: { text: string }) {
  const blocks = props.text.split(/\n\s*\n/).filter((b) => b.trim());
  return (
    <div className="guidelines-text">
      {blocks.map((block) => {
        const lines = block.split('\n').filter((l) => l.trim());
        if (lines.every((l) => /^\s*- /.test(l)))
          return (
            <ul key={block}>
              {lines.map((l) => (
                <li key={l}>{l.replace(/^\s*- /, '')}</li>
              ))}
            </ul>
          );
        return <p key={block}>{lines.join(' ')}</p>;
      })}
    </div>
  );
}

export function TaskTools(props: { assignmentId: number; onLeft: (how: 'skipped' | 'reported') => void }) {
  const guidelines = useLoad(() => api.guidelines());
  const skipKey = useMemo(() => newKey(), []);
  const reportKey = useMemo(() => newKey(), []);
  const [reporting, setReporting] = useState(false);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const leave = async (how: 'skipped' | 'reported') => {
    setBusy(true);
    setError(null);
    try {
      if (how === 'skipped') await api.skip(props.assignmentId, skipKey);
      else await api.report(props.assignmentId, reason, reportKey);
      clearDrafts(props.assignmentId);
      props.onLeft(how);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  return (
    <aside className="task-tools">
      <details className="guidelines" open data-testid="guidelines">
        <summary>Guidelines</summary>
        {guidelines.data && <Guidelines text={guidelines.data.guidelines} />}
      </details>
      <div className="row gap">
        <button
          type="button"
          className="btn"
          disabled={busy}
          data-testid="skip-task"
          title="Pass this task to someone else; it will not come back to you"
          onClick={() => void leave('skipped')}
        >
          Skip
        </button>
        <button
          type="button"
          className="btn"
          disabled={busy}
          data-testid="report-prompt"
          aria-expanded={reporting}
          onClick={() => setReporting(!reporting)}
        >
          Report this prompt
        </button>
      </div>
      {reporting && (
        <div className="report-form">
          <label className="field">
            <span className="field-label">What is wrong with the prompt?</span>
            <textarea
              rows={2}
              value={reason}
              data-testid="report-reason"
              placeholder="e.g. it asks for something harmful, it is unclear, the text is broken"
              onChange={(e) => setReason(e.target.value)}
            />
          </label>
          <button
            type="button"
            className="btn btn-danger"
            disabled={busy || !reason.trim()}
            data-testid="report-send"
            onClick={() => void leave('reported')}
          >
            Send report and skip
          </button>
        </div>
      )}
      <ErrorBox error={error} />
    </aside>
  );
}
