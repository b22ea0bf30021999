/**
 * Chat playground: replies stream token by token; every Nth reply shows two candidates to choose from. The server
 * keeps each conversation, so the list on the left resumes any of them.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, api, type ConversationSummary, chatStream, newKey } from '../api.js';
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
  const [notice, setNotice] = useState<string | null>(null);
  const [compared, setCompared] = useState(0);
  const [conversationId, setConversationId] = useState<number | null>(null);
  const [conversations, setConversations] = useState<ConversationSummary[]>([]);
  const abort = useRef<AbortController | null>(null);
  const endRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);

  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll on every change of the transcript
  useEffect(() => {
    endRef.current?.scrollIntoView?.({ block: 'end' });
  }, [messages, pair]);

  const busy = streaming || pair !== null;

  const refreshList = useCallback(async () => {
    try {
      setConversations((await api.conversations()).conversations);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void refreshList();
  }, [refreshList]);

  const open = async (id: number) => {
    if (streaming) return;
    setError(null);
    try {
      const { conversation } = await api.conversation(id);
      setConversationId(conversation.id);
      setMessages(conversation.messages);
      const p = conversation.pendingPair;
      setPair(p && { ...p, key: newKey() });
    } catch (e) {
      setError(e);
    }
  };

  const startNew = () => {
    setConversationId(null);
    setMessages([]);
    setPair(null);
    setError(null);
    inputRef.current?.focus();
  };

  const send = async () => {
    const text = draft.trim();
    if (!text || busy) return;
    setError(null);
    setNotice(null);
    setDraft('');
    const history: Msg[] = [...messages, { role: 'user', content: text }];
    setMessages([...history, { role: 'assistant', content: '' }]);
    setStreaming(true);
    const ac = new AbortController();
    abort.current = ac;
    try {
      const body = conversationId === null ? { content: text } : { content: text, conversationId };
      for await (const ev of chatStream(body, ac.signal)) {
        if (ev.type === 'conversation') setConversationId(ev.id);
        else if (ev.type === 'token') {
          setMessages((m) => {
            const out = m.slice();
            const last = out[out.length - 1];
            out[out.length - 1] = { ...last, content: last.content + ev.text };
            return out;
          });
        } else if (ev.type === 'compare') {
          setMessages(history);
          setPair({ pairId: ev.pairId, a: ev.a, b: ev.b, key: newKey() });
        } else if (ev.type === 'context') {
          setNotice(ev.message);
        } else if (ev.type === 'error') {
          // An empty reply saved nothing: the message goes back to the box. A failure part way keeps what arrived.
          if (ev.error === 'empty_reply') throw new ApiError(200, ev.error, ev.message);
          setError(new ApiError(200, ev.error, ev.message));
        }
      }
    } catch (e) {
      // A stopped reply keeps what arrived (the server keeps it too).
      if ((e as Error).name !== 'AbortError') {
        setError(e);
        setMessages(messages);
        setDraft(text);
        // A first message that got no answer leaves no conversation behind on the server either.
        setConversationId(conversationId);
      }
    } finally {
      setStreaming(false);
      abort.current = null;
      inputRef.current?.focus();
      void refreshList();
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
      void refreshList();
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
        </div>
      </div>
      <div className="chat-layout">
        <aside className="chat-history card" aria-label="Conversations">
          <button
            type="button"
            className="btn btn-primary wide"
            data-testid="chat-new"
            disabled={streaming}
            onClick={startNew}
          >
            + New chat
          </button>
          {conversations.length === 0 ? (
            <p className="muted small chat-history-empty">Your conversations will be listed here.</p>
          ) : (
            <ul className="chat-history-list" data-testid="chat-history">
              {conversations.map((c) => (
                <li key={c.id}>
                  <button
                    type="button"
                    className={`chat-history-item${c.id === conversationId ? ' active' : ''}`}
                    aria-current={c.id === conversationId ? 'true' : undefined}
                    disabled={streaming}
                    onClick={() => void open(c.id)}
                  >
                    <span className="chat-history-title">{c.title}</span>
                    <span className="muted small">
                      {whenText(c.updatedAt)} · {c.messages} messages
                    </span>
                  </button>
                </li>
              ))}
            </ul>
          )}
        </aside>
        <div className="chat-main">
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
          {notice && (
            <p className="muted small" data-testid="chat-context-note">
              {notice}
            </p>
          )}
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
      </div>
    </div>
  );
}

/** "14:05" today, "3 Mar" before. */
function whenText(ms: number): string {
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString([], { day: 'numeric', month: 'short' });
}
