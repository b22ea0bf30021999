/** Chat playground: replies stream token by token; every Nth reply shows two candidates to choose from. */
import { useEffect, useMemo, useRef, useState } from 'react';
import { api, chatStream, newKey } from '../api.js';
import { Empty, ErrorBox, Kbd } from '../ui.js';

interface Msg {
  role: 'user' | 'assistant';
  content: string;
}
interface Pair {
  pairId: number;
  a: string;
  b: string;
  key: string;
}

export function ChatScreen() {
  const [messages, setMessages] = useState<Msg[]>([]);
  const [draft, setDraft] = useState('');
  const [streaming, setStreaming] = useState(false);
  const [pair, setPair] = useState<Pair | null>(null);
  const [choosing, setChoosing] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [compared, setCompared] = useState(0);
  const abort = useRef<AbortController | null>(null);
  const endRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);

  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll on every change of the transcript
  useEffect(() => {
    endRef.current?.scrollIntoView?.({ block: 'end' });
  }, [messages, pair]);

  const busy = streaming || pair !== null;

  const send = async () => {
    const text = draft.trim();
    if (!text || busy) return;
    setError(null);
    setDraft('');
    const history: Msg[] = [...messages, { role: 'user', content: text }];
    setMessages([...history, { role: 'assistant', content: '' }]);
    setStreaming(true);
    const ac = new AbortController();
    abort.current = ac;
    try {
      for await (const ev of chatStream({ messages: history }, ac.signal)) {
        if (ev.type === 'token') {
          setMessages((m) => {
            const out = m.slice();
            const last = out[out.length - 1];
            out[out.length - 1] = { ...last, content: last.content + ev.text };
            return out;
          });
        } else if (ev.type === 'compare') {
          setMessages(history);
          setPair({ pairId: ev.pairId, a: ev.a, b: ev.b, key: newKey() });
        }
      }
    } catch (e) {
      if ((e as Error).name !== 'AbortError') {
        setError(e);
        setMessages(history);
      }
    } finally {
      setStreaming(false);
      abort.current = null;
      inputRef.current?.focus();
    }
  };

  const choose = async (choice: 'a' | 'b' | 'tie') => {
    if (!pair || choosing) return;
    setChoosing(true);
    try {
      await api.chooseChat(pair.pairId, choice, pair.key);
      const keep = choice === 'b' ? pair.b : pair.a;
      setMessages((m) => [...m, { role: 'assistant', content: keep }]);
      setPair(null);
      setCompared((n) => n + 1);
      inputRef.current?.focus();
    } catch (e) {
      setError(e);
    } finally {
      setChoosing(false);
    }
  };

  const pairKeys = useMemo(() => pair, [pair]);
  useEffect(() => {
    if (!pairKeys) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if ((e.target as HTMLElement)?.tagName === 'TEXTAREA') return;
      const c = { '1': 'a', '2': 'b', '3': 'tie' }[e.key] as 'a' | 'b' | 'tie' | undefined;
      if (c) {
        e.preventDefault();
        void choose(c);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  return (
    <div className="page chat-page">
      <div className="page-head">
        <div>
          <h1>Chat playground</h1>
          <p className="lede">
            Talk to the current policy. Now and then you will see two replies — pick the better one.
          </p>
        </div>
        <div className="row gap">
          <div className="counter" role="group" aria-label="Comparisons made">
            <span className="counter-n" data-testid="chat-compared">
              {compared}
            </span>
            <span className="counter-l">comparisons</span>
          </div>
          <button
            type="button"
            className="btn"
            disabled={busy || messages.length === 0}
            onClick={() => {
              setMessages([]);
              setError(null);
            }}
          >
            New chat
          </button>
        </div>
      </div>
      <div className="chat-log" data-testid="chat-log">
        {messages.length === 0 && !pair && (
          <Empty icon="✉" title="Start a conversation">
            Ask for an explanation, a story, a plan — anything you would ask an assistant.
          </Empty>
        )}
        {messages.map((m, i) => (
          <div
            // biome-ignore lint/suspicious/noArrayIndexKey: the transcript only grows at the end
            key={i}
            className={`msg msg-${m.role}`}
            data-testid={`msg-${m.role}`}
          >
            <div className="msg-who">{m.role === 'user' ? 'You' : 'Assistant'}</div>
            <div className="msg-text">
              {m.content}
              {streaming && i === messages.length - 1 && m.role === 'assistant' && <span className="caret" />}
            </div>
          </div>
        ))}
        {pair && (
          <div className="compare" data-testid="chat-compare">
            <div className="compare-head">
              Which reply is better? <span className="muted">Your choice continues the conversation.</span>
            </div>
            <div className="ab-grid">
              {(['a', 'b'] as const).map((side, j) => (
                <div key={side} className="ab-pane">
                  <div className="ab-head">Reply {side.toUpperCase()}</div>
                  <div className="resp-text">{pair[side]}</div>
                  <button
                    type="button"
                    className="btn btn-primary wide"
                    disabled={choosing}
                    data-testid={`choose-${side}`}
                    onClick={() => void choose(side)}
                  >
                    {side.toUpperCase()} is better <Kbd>{j + 1}</Kbd>
                  </button>
                </div>
              ))}
            </div>
            <div className="row center-row">
              <button type="button" className="btn" disabled={choosing} onClick={() => void choose('tie')}>
                About the same <Kbd>3</Kbd>
              </button>
            </div>
          </div>
        )}
        <div ref={endRef} />
      </div>
      <ErrorBox error={error} />
      <div className="composer">
        <textarea
          ref={inputRef}
          data-testid="chat-input"
          value={draft}
          rows={2}
          placeholder={pair ? 'Choose a reply above to continue…' : 'Message the assistant'}
          disabled={pair !== null}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) {
              e.preventDefault();
              void send();
            }
          }}
        />
        {streaming ? (
          <button type="button" className="btn" onClick={() => abort.current?.abort()}>
            Stop
          </button>
        ) : (
          <button
            type="button"
            className="btn btn-primary"
            data-testid="chat-send"
            disabled={busy || !draft.trim()}
            onClick={() => void send()}
          >
            Send
          </button>
        )}
      </div>
      <div className="hint composer-hint">
        <Kbd>Enter</Kbd> send · <Kbd>Shift</Kbd>+<Kbd>Enter</Kbd> new line
      </div>
    </div>
  );
}
