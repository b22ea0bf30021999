/** The labeler's workspace: the screening test first (when required), then one task at a time. */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { ApiError, type AssignmentView, api, newKey, type ScreeningItem } from '../api.js';
import { FLAGS, type Flag, Ranker, rankingText, toRanking } from '../ranker.js';
import { Card, clearDrafts, Empty, ErrorBox, Kbd, Shortcuts, Spinner, useDraft, useKeys, useToast } from '../ui.js';
import { TaskTools } from './TaskTools.js';

type Phase =
  | { kind: 'loading' }
  | { kind: 'screening'; items: ScreeningItem[] }
  | { kind: 'screening-not-ready' }
  | { kind: 'screening-no-attempts' }
  | { kind: 'task'; assignment: AssignmentView }
  | { kind: 'done' }
  | { kind: 'error'; error: unknown };

export function LabelScreen() {
  const [phase, setPhase] = useState<Phase>({ kind: 'loading' });
  const [doneCount, setDoneCount] = useState(0);
  const toast = useToast();

  const loadNext = useCallback(async () => {
    setPhase({ kind: 'loading' });
    try {
      const s = await api.screening();
      if (s.required && !s.passed) {
        if (s.attemptsLeft === 0) setPhase({ kind: 'screening-no-attempts' });
        else setPhase(s.items.length ? { kind: 'screening', items: s.items } : { kind: 'screening-not-ready' });
        return;
      }
      const { assignment } = await api.nextTask();
      setPhase(assignment ? { kind: 'task', assignment } : { kind: 'done' });
      // A new task starts at its prompt, not where the last one was scrolled to.
      window.scrollTo(0, 0);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'screening_required') setPhase({ kind: 'screening-not-ready' });
      else setPhase({ kind: 'error', error: e });
    }
  }, []);

  useEffect(() => {
    void loadNext();
  }, [loadNext]);

  const submitted = (outcome: Outcome) => {
    if (outcome === 'saved') {
      setDoneCount((n) => n + 1);
      toast('Saved ✓');
    } else {
      toast('That task ran out of time and went to another labeler — here is a new one.', 'error');
    }
    void loadNext();
  };

  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Labeling</h1>
          <p className="lede">Your judgments train the reward model. Take your time; quality beats speed.</p>
        </div>
        <div className="counter" data-testid="session-count" role="group" aria-label="Tasks done this session">
          <span className="counter-n">{doneCount}</span>
          <span className="counter-l">done this session</span>
        </div>
      </div>
      {phase.kind === 'loading' && (
        <div className="center">
          <Spinner />
        </div>
      )}
      {phase.kind === 'error' && <ErrorBox error={phase.error} />}
      {phase.kind === 'screening-not-ready' && (
        <Card>
          <Empty icon="◷" title="The screening test is not ready yet">
            Your admin has not set up the screening test. Check back soon.
          </Empty>
        </Card>
      )}
      {phase.kind === 'screening-no-attempts' && (
        <Card>
          <Empty icon="✋" title="No screening attempts left">
            You have used every attempt at the screening test. Ask your admin to look at your answers and let you
            through.
          </Empty>
        </Card>
      )}
      {phase.kind === 'screening' && <Screening items={phase.items} onPassed={loadNext} />}
      {phase.kind === 'done' && (
        <Card>
          <Empty icon="✓" title="All caught up">
            There are no tasks waiting for you right now.
            <div className="row gap center-row">
              <button type="button" className="btn" onClick={() => void loadNext()}>
                Check again
              </button>
            </div>
          </Empty>
        </Card>
      )}
      {phase.kind === 'task' && phase.assignment.kind === 'demonstration' && (
        <Demonstration key={phase.assignment.id} a={phase.assignment} onDone={submitted} />
      )}
      {phase.kind === 'task' && phase.assignment.kind === 'ranking' && (
        <Ranking key={phase.assignment.id} a={phase.assignment} onDone={submitted} />
      )}
      {phase.kind === 'task' && phase.assignment.kind === 'ab' && (
        <AB key={phase.assignment.id} a={phase.assignment} onDone={submitted} />
      )}
      {phase.kind === 'task' && (
        <TaskTools
          key={`tools-${phase.assignment.id}`}
          assignmentId={phase.assignment.id}
          onLeft={(how) => {
            toast(
              how === 'skipped' ? 'Skipped — it goes to someone else.' : 'Reported — thank you. Here is the next task.',
            );
            void loadNext();
          }}
        />
      )}
    </div>
  );
}

function PromptBox(props: { text: string; kind: string; label: string; expiresAt?: number | null }) {
  return (
    <div className="prompt-box">
      <div className="prompt-meta">
        <span className="pill">{props.kind}</span>
        <span className="muted">{props.label}</span>
        {props.expiresAt && (
          <span className="muted" title="After this the task may go to another labeler">
            submit by {new Date(props.expiresAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}
          </span>
        )}
      </div>
      <div className="prompt-label">Prompt</div>
      <div className="prompt-text" data-testid="prompt-text">
        {props.text}
      </div>
    </div>
  );
}

// ---------------------------------------------------------------- screening

function Screening(props: { items: ScreeningItem[]; onPassed: () => void }) {
  const [i, setI] = useState(0);
  const [orders, setOrders] = useState(() => props.items.map((it) => it.responses.map((_, j) => j)));
  const [result, setResult] = useState<{ passed: boolean; attemptsLeft: number | null } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const key = useMemo(() => newKey(), []);
  const item = props.items[i];
  const last = i === props.items.length - 1;

  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const r = await api.submitScreening(
        props.items.map((it, j) => ({ goldId: it.goldId, ranking: orders[j] })),
        key,
      );
      setResult(r);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  if (result) {
    return (
      <Card>
        <Empty
          icon={result.passed ? '★' : '↻'}
          title={result.passed ? 'You passed the screening test' : 'Not quite yet'}
        >
          <p data-testid="screening-result">
            {result.passed
              ? 'Your rankings agree with the reference answers closely enough.'
              : result.attemptsLeft === 0
                ? 'Your rankings differ too much from the reference answers, and that was your last attempt: ask your admin to let you through.'
                : `Your rankings differ too much from the reference answers.${result.attemptsLeft === null ? '' : ` Attempts left: ${result.attemptsLeft}.`}`}
          </p>
          <div className="row gap center-row">
            {result.passed ? (
              <button type="button" className="btn btn-primary" onClick={props.onPassed}>
                Start labeling →
              </button>
            ) : (
              result.attemptsLeft !== 0 && (
                <button type="button" className="btn" onClick={() => location.reload()}>
                  Try again
                </button>
              )
            )}
          </div>
        </Empty>
      </Card>
    );
  }

  return (
    <>
      <div className="banner">
        <b>Screening test.</b> Rank each set of responses from best to worst. We compare your order with reference
        answers; you need to agree on most pairs before real tasks open.
      </div>
      <div className="progress-row">
        <span>
          Question {i + 1} of {props.items.length}
        </span>
        <div className="progress" aria-hidden="true">
          <div style={{ width: `${((i + 1) / props.items.length) * 100}%` }} />
        </div>
      </div>
      <PromptBox text={item.prompt} kind="screening" label={`item ${i + 1} of ${props.items.length}`} />
      <Shortcuts
        items={[
          [<Kbd key="d">drag</Kbd>, 'reorder'],
          [
            <span key="a">
              <Kbd>Alt</Kbd>+<Kbd>↑</Kbd>/<Kbd>↓</Kbd>
            </span>,
            'move the focused response',
          ],
          [
            <span key="f">
              <Kbd>↑</Kbd>/<Kbd>↓</Kbd>
            </span>,
            'focus previous / next',
          ],
        ]}
      />
      <Ranker
        key={item.goldId}
        responses={item.responses}
        order={orders[i]}
        onOrder={(o) => setOrders((all) => all.map((x, j) => (j === i ? o : x)))}
      />
      <ErrorBox error={error} />
      <div className="actions-bar">
        <button type="button" className="btn" disabled={i === 0} onClick={() => setI(i - 1)}>
          ← Previous
        </button>
        {last ? (
          <button type="button" className="btn btn-primary" disabled={busy} onClick={() => void submit()}>
            {busy ? 'Checking…' : 'Submit screening test'}
          </button>
        ) : (
          <button type="button" className="btn btn-primary" onClick={() => setI(i + 1)}>
            Next question →
          </button>
        )}
      </div>
    </>
  );
}

// ---------------------------------------------------------------- demonstration

/** How a task ended for this labeler: stored, or taken back because its time ran out (nothing stored). */
type Outcome = 'saved' | 'expired';

function useSubmit(id: number, onDone: (outcome: Outcome) => void) {
  const key = useMemo(() => newKey(), []);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (body: Parameters<typeof api.submit>[1]) => {
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await api.submit(id, body, key);
      clearDrafts(id);
      onDone('saved');
    } catch (e) {
      if (e instanceof ApiError && e.code === 'expired') {
        clearDrafts(id);
        return onDone('expired');
      }
      setError(e);
      setBusy(false);
    }
  };
  return { busy, error, submit };
}

function Demonstration(props: {
  a: Extract<AssignmentView, { kind: 'demonstration' }>;
  onDone: (outcome: Outcome) => void;
}) {
  // Kept in local storage until it is stored: an expired session or a reload loses nothing.
  const [text, setText] = useDraft(props.a.id, 'text', () => '');
  const { busy, error, submit } = useSubmit(props.a.id, props.onDone);
  const words = text.trim() ? text.trim().split(/\s+/).length : 0;
  const ok = text.trim().length > 0;
  return (
    <>
      <PromptBox
        text={props.a.prompt}
        kind="demonstration"
        label={`your task ${props.a.number}`}
        expiresAt={props.a.expiresAt}
      />
      <Card>
        <label className="field">
          <span className="field-label">Write the response you would want the assistant to give</span>
          <textarea
            className="demo-input"
            data-testid="demo-input"
            value={text}
            autoFocus
            rows={10}
            placeholder="Be helpful, truthful and harmless. Follow the instruction; ask for clarification only if it is truly ambiguous."
            onChange={(e) => setText(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && ok) {
                e.preventDefault();
                void submit({ completion: text });
              }
            }}
          />
        </label>
        <div className="row between">
          <span className="muted">
            {words} words · {text.length} characters
          </span>
          <div className="row gap">
            <span className="hint">
              <Kbd>Ctrl</Kbd>+<Kbd>Enter</Kbd> submit
            </span>
            <button
              type="button"
              className="btn btn-primary"
              disabled={!ok || busy}
              onClick={() => void submit({ completion: text })}
            >
              {busy ? 'Saving…' : 'Submit demonstration'}
            </button>
          </div>
        </div>
        <ErrorBox error={error} />
      </Card>
    </>
  );
}

// ---------------------------------------------------------------- ranking

function Ranking(props: { a: Extract<AssignmentView, { kind: 'ranking' }>; onDone: (outcome: Outcome) => void }) {
  const k = props.a.responses.length;
  const [order, setOrder] = useDraft(props.a.id, 'order', () => props.a.responses.map((_, i) => i));
  const [tied, setTied] = useDraft<number[]>(props.a.id, 'tied', () => []);
  const [likert, setLikert] = useDraft<(number | null)[]>(props.a.id, 'likert', () => Array(k).fill(null));
  const [flags, setFlags] = useDraft<Set<Flag>[]>(
    props.a.id,
    'flags',
    () => Array.from({ length: k }, () => new Set<Flag>()),
    { save: (v) => v.map((f) => [...f]), load: (raw) => (raw as Flag[][]).map((f) => new Set(f)) },
  );
  const { busy, error, submit } = useSubmit(props.a.id, props.onDone);
  const scored = likert.filter((x) => x !== null).length;
  const ready = scored === k;

  const send = () => {
    if (!ready) return;
    const f: Record<string, number[]> = {};
    for (const flag of FLAGS) {
      const on = flags.flatMap((s, i) => (s.has(flag) ? [i] : []));
      if (on.length) f[flag] = on;
    }
    void submit({ ranking: toRanking(order, tied), likert: likert as number[], flags: f });
  };

  return (
    <>
      <PromptBox
        text={props.a.prompt}
        kind="ranking"
        label={`your task ${props.a.number}`}
        expiresAt={props.a.expiresAt}
      />
      <Shortcuts
        items={[
          [<Kbd key="d">drag</Kbd>, 'reorder'],
          [
            <span key="a">
              <Kbd>Alt</Kbd>+<Kbd>↑</Kbd>/<Kbd>↓</Kbd>
            </span>,
            'move focused response',
          ],
          [
            <span key="f">
              <Kbd>↑</Kbd>/<Kbd>↓</Kbd>
            </span>,
            'focus previous / next',
          ],
          [
            <span key="s">
              <Kbd>1</Kbd>–<Kbd>7</Kbd>
            </span>,
            'score focused response',
          ],
          [<Kbd key="t">=</Kbd>, 'tie with the one above'],
        ]}
      />
      <Ranker
        responses={props.a.responses}
        order={order}
        onOrder={setOrder}
        tied={tied}
        onTied={setTied}
        likert={likert}
        onLikert={setLikert}
        flags={flags}
        onFlags={setFlags}
      />
      <ErrorBox error={error} />
      <div className="actions-bar">
        <span className="muted" data-testid="ranking-summary">
          Order: {rankingText(toRanking(order, tied))} · {scored}/{k} scored
        </span>
        <button type="button" className="btn btn-primary" disabled={!ready || busy} onClick={send}>
          {busy ? 'Saving…' : ready ? 'Submit ranking' : `Score all ${k} responses to submit`}
        </button>
      </div>
    </>
  );
}

// ---------------------------------------------------------------- A/B

function AB(props: { a: Extract<AssignmentView, { kind: 'ab' }>; onDone: (outcome: Outcome) => void }) {
  const { busy, error, submit } = useSubmit(props.a.id, props.onDone);
  useKeys(
    {
      a: () => void submit({ choice: 'a' }),
      b: () => void submit({ choice: 'b' }),
      t: () => void submit({ choice: 'tie' }),
    },
    !busy,
  );
  return (
    <>
      <PromptBox
        text={props.a.prompt}
        kind="A/B comparison"
        label={`your task ${props.a.number}`}
        expiresAt={props.a.expiresAt}
      />
      <p className="lede">Which response is better overall? The models are hidden and their sides are shuffled.</p>
      <div className="ab-grid">
        {(['a', 'b'] as const).map((side) => (
          <div key={side} className="ab-pane">
            <div className="ab-head">Response {side.toUpperCase()}</div>
            <div className="resp-text">{props.a[side]}</div>
            <button
              type="button"
              className="btn btn-primary wide"
              disabled={busy}
              onClick={() => void submit({ choice: side })}
            >
              {side.toUpperCase()} is better <Kbd>{side.toUpperCase()}</Kbd>
            </button>
          </div>
        ))}
      </div>
      <div className="center-row row">
        <button type="button" className="btn" disabled={busy} onClick={() => void submit({ choice: 'tie' })}>
          About the same <Kbd>T</Kbd>
        </button>
      </div>
      <ErrorBox error={error} />
    </>
  );
}
