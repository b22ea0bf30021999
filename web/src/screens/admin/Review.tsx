/**
 * The review queue: labelers' reports of prompts, then submitted work — per task or labeler, by review state and
 * kind, searchable and paged — to accept, or reject with a reason (rejected work leaves every export and its task
 * goes back to the queue if it needs more answers).
 */
import { useEffect, useState } from 'react';
import { api, type Submission, type SubmissionQuery } from '../../api.js';
import { letter, rankingText } from '../../ranker.js';
import { Card, Empty, ErrorBox, useLoad, useToast } from '../../ui.js';
import { Pager } from './Pager.js';

const PAGE = 20;

export function AdminReview() {
  const toast = useToast();
  const [version, setVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);
  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Review</h1>
          <p className="lede">
            Reports from labelers, and every piece of submitted work. Rejected work stays in the database but leaves
            every export; its task goes back to the queue for another labeler.
          </p>
        </div>
      </div>
      <Reports version={version} onChange={reload} toast={toast} />
      <Submissions version={version} onChange={reload} toast={toast} />
    </div>
  );
}

type Toast = ReturnType<typeof useToast>;

function Reports(props: { version: number; onChange: () => void; toast: Toast }) {
  const reports = useLoad(() => api.reports('open'), [props.version]);
  const [error, setError] = useState<unknown>(null);
  const resolve = async (id: number, action: 'dismiss' | 'archive') => {
    setError(null);
    try {
      await api.resolveReport(id, action);
      props.toast(action === 'archive' ? 'Prompt archived with its tasks' : 'Report dismissed');
      props.onChange();
    } catch (e) {
      setError(e);
    }
  };
  const list = reports.data?.reports ?? [];
  return (
    <Card
      title={
        <>
          Reported prompts <span className="count">{list.length}</span>
        </>
      }
    >
      <ErrorBox error={reports.error ?? error} />
      {list.length === 0 ? (
        <Empty icon="⚑" title="No open reports">
          Labelers report prompts that are broken, unclear or harmful; they appear here.
        </Empty>
      ) : (
        <ul className="review-list" data-testid="reports">
          {list.map((r) => (
            <li key={r.id} className="review-item">
              <div className="prompt-text">{r.prompt}</div>
              <div className="muted small">
                reported by {r.username} · task {r.taskId}: <b className="report-reason">{r.reason}</b>
              </div>
              <div className="row gap">
                <button type="button" className="btn btn-small" onClick={() => void resolve(r.id, 'dismiss')}>
                  Dismiss
                </button>
                <button
                  type="button"
                  className="btn btn-small btn-primary"
                  data-testid={`archive-report-${r.id}`}
                  onClick={() => void resolve(r.id, 'archive')}
                >
                  Archive the prompt
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

function Submissions(props: { version: number; onChange: () => void; toast: Toast }) {
  const params = new URLSearchParams(location.search);
  const taskId = Number(params.get('taskId')) || undefined;
  const [page, setPage] = useState(0);
  const [search, setSearch] = useState('');
  const [q, setQ] = useState('');
  const [review, setReview] = useState<SubmissionQuery['review'] | ''>(taskId ? '' : 'pending');
  const [kind, setKind] = useState<SubmissionQuery['kind'] | ''>('');
  const [userId, setUserId] = useState<number | ''>('');
  const users = useLoad(() => api.users());
  useEffect(() => {
    const t = setTimeout(() => setQ(search.trim()), 300);
    return () => clearTimeout(t);
  }, [search]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new filter starts again at the first page
  useEffect(() => setPage(0), [q, review, kind, userId]);
  const subs = useLoad(
    () =>
      api.submissions({
        limit: PAGE,
        offset: page * PAGE,
        ...(taskId ? { taskId } : {}),
        ...(q ? { q } : {}),
        ...(review ? { review } : {}),
        ...(kind ? { kind } : {}),
        ...(userId ? { userId } : {}),
      }),
    [page, q, review, kind, userId, taskId, props.version],
  );
  const total = subs.data?.total ?? 0;
  return (
    <Card
      title={
        <>
          Submissions{taskId ? ` of task ${taskId}` : ''} <span className="count">{total}</span>
        </>
      }
      actions={<Pager page={page} pageSize={PAGE} total={total} onPage={setPage} />}
    >
      <div className="filters">
        <input
          type="search"
          placeholder="Search prompts…"
          aria-label="Search submissions by prompt"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
          data-testid="submission-search"
        />
        <select
          aria-label="Review state"
          value={review}
          data-testid="review-filter"
          onChange={(e) => setReview(e.target.value as typeof review)}
        >
          <option value="">Any review</option>
          <option value="pending">Not reviewed</option>
          <option value="accepted">Accepted</option>
          <option value="rejected">Rejected</option>
        </select>
        <select aria-label="Kind" value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}>
          <option value="">All kinds</option>
          <option value="demonstration">Demonstration</option>
          <option value="ranking">Ranking</option>
          <option value="ab">A/B</option>
        </select>
        <select
          aria-label="Labeler"
          value={userId}
          onChange={(e) => setUserId(e.target.value ? Number(e.target.value) : '')}
        >
          <option value="">All labelers</option>
          {(users.data?.users ?? [])
            .filter((u) => u.role === 'labeler')
            .map((u) => (
              <option key={u.id} value={u.id}>
                {u.username}
              </option>
            ))}
        </select>
      </div>
      <ErrorBox error={subs.error} />
      {(subs.data?.submissions.length ?? 0) === 0 ? (
        <Empty icon="✓" title="Nothing to review here">
          Change the filters to see reviewed work.
        </Empty>
      ) : (
        <ul className="review-list" data-testid="submissions">
          {subs.data!.submissions.map((s) => (
            <SubmissionItem key={s.assignmentId} s={s} onChange={props.onChange} toast={props.toast} />
          ))}
        </ul>
      )}
    </Card>
  );
}

function SubmissionItem(props: { s: Submission; onChange: () => void; toast: Toast }) {
  const { s } = props;
  const [rejecting, setRejecting] = useState(false);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>(null);
  const decide = async (decision: 'accepted' | 'rejected') => {
    setError(null);
    try {
      await api.review(s.assignmentId, decision, decision === 'rejected' ? reason : undefined);
      props.toast(decision === 'rejected' ? 'Rejected: it leaves the exports' : 'Accepted');
      props.onChange();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <li className={`review-item${s.review === 'rejected' ? ' rejected' : ''}`} data-testid="submission">
      <div className="row between">
        <span>
          <span className="pill">{s.kind}</span> <b>{s.username}</b>{' '}
          <span className="muted small">
            task {s.taskId}
            {s.completedAt ? ` · ${new Date(s.completedAt).toLocaleString()}` : ''}
          </span>
        </span>
        {s.review && (
          <span className={`pill ${s.review === 'rejected' ? 'pill-bad' : 'pill-good'}`}>
            {s.review}
            {s.reviewReason ? `: ${s.reviewReason}` : ''}
          </span>
        )}
      </div>
      <div className="prompt-text">{s.prompt}</div>
      {s.completion !== null && <div className="resp-text">{s.completion}</div>}
      {s.ranking && s.responses && (
        <div>
          <ol className="review-responses">
            {s.responses.map((r, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: a response's index is its identity
              <li key={i}>
                <b>{letter(i)}</b> {r}
              </li>
            ))}
          </ol>
          <div className="muted small">Ranking: {rankingText(s.ranking)}</div>
        </div>
      )}
      {s.choice && s.responses && (
        <div className="muted small">
          Chose {s.choice === 'tie' ? 'a tie' : `${s.choice.toUpperCase()}`} between “{s.responses[0]}” and “
          {s.responses[1]}”
        </div>
      )}
      <div className="row gap">
        <button
          type="button"
          className="btn btn-small"
          disabled={s.review === 'accepted'}
          onClick={() => void decide('accepted')}
        >
          Accept
        </button>
        <button
          type="button"
          className="btn btn-small"
          disabled={s.review === 'rejected'}
          data-testid={`reject-${s.assignmentId}`}
          onClick={() => setRejecting(!rejecting)}
        >
          Reject…
        </button>
        {rejecting && (
          <>
            <input
              type="text"
              placeholder="Why? (the labeler's work leaves the exports)"
              aria-label="Reason for rejecting"
              value={reason}
              data-testid={`reject-reason-${s.assignmentId}`}
              onChange={(e) => setReason(e.target.value)}
            />
            <button
              type="button"
              className="btn btn-small btn-primary"
              disabled={!reason.trim()}
              data-testid={`reject-send-${s.assignmentId}`}
              onClick={() => void decide('rejected')}
            >
              Reject
            </button>
          </>
        )}
      </div>
      <ErrorBox error={error} />
    </li>
  );
}
