/** Small shared pieces: router, buttons, cards, empty states, keyboard hints, toasts, error text. */
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useState,
  useSyncExternalStore,
} from 'react';
import { ApiError } from './api.js';

// ---------------------------------------------------------------- router (history API; the server falls back to index.html)

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => {
  for (const l of listeners) l();
});

export function navigate(to: string, replace = false): void {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  for (const l of listeners) l();
  window.scrollTo(0, 0);
}

export function usePath(): string {
  return useSyncExternalStore(
    (cb) => {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    () => location.pathname,
  );
}

export function Link(props: { to: string; className?: string; children: ReactNode; 'aria-current'?: 'page' }) {
  return (
    <a
      href={props.to}
      className={props.className}
      aria-current={props['aria-current']}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

// ---------------------------------------------------------------- building blocks

export function Card(props: { title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string }) {
  return (
    <section className={`card ${props.className ?? ''}`}>
      {(props.title || props.actions) && (
        <header className="card-head">
          {props.title && <h2>{props.title}</h2>}
          {props.actions && <div className="card-actions">{props.actions}</div>}
        </header>
      )}
      {props.children}
    </section>
  );
}

export function Empty(props: { icon?: string; title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <div className="empty-icon" aria-hidden="true">
        {props.icon ?? '◌'}
      </div>
      <h3>{props.title}</h3>
      {props.children && <div className="empty-body">{props.children}</div>}
    </div>
  );
}

export function Kbd(props: { children: ReactNode }) {
  return <kbd>{props.children}</kbd>;
}

/** A row of shortcut hints: [[keys, what], ...]. */
export function Shortcuts(props: { items: [ReactNode, string][] }) {
  return (
    <ul className="shortcuts" aria-label="Keyboard shortcuts">
      {props.items.map(([k, what]) => (
        <li key={what}>
          {k} <span>{what}</span>
        </li>
      ))}
    </ul>
  );
}

export function Stat(props: { label: string; value: ReactNode; sub?: ReactNode; testId?: string }) {
  return (
    <div className="stat" data-testid={props.testId}>
      <div className="stat-value">{props.value}</div>
      <div className="stat-label">{props.label}</div>
      {props.sub && <div className="stat-sub">{props.sub}</div>}
    </div>
  );
}

export function Spinner() {
  return <span className="spinner" role="status" aria-label="Loading" />;
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    const d = Array.isArray(e.details) ? e.details : [];
    const lines = d
      .slice(0, 5)
      .map((x: { text?: string; message?: string; promptId?: number }) =>
        x.text ? x.text : x.promptId ? `prompt ${x.promptId}: ${x.message}` : (x.message ?? ''),
      )
      .filter(Boolean);
    return [e.message, ...lines].join('\n');
  }
  return e instanceof Error ? e.message : String(e);
}

export function ErrorBox(props: { error: unknown }) {
  if (!props.error) return null;
  return (
    <div className="error-box" role="alert">
      {errorText(props.error)}
    </div>
  );
}

export const pct = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${Math.round(x * 100)}%`);

// ---------------------------------------------------------------- toasts

type Toast = { id: number; text: string; kind: 'ok' | 'error' };
const ToastCtx = createContext<(text: string, kind?: 'ok' | 'error') => void>(() => {});
export const useToast = () => useContext(ToastCtx);

export function ToastHost(props: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const push = useCallback((text: string, kind: 'ok' | 'error' = 'ok') => {
    const id = Date.now() + Math.random();
    setToasts((t) => [...t.slice(-2), { id, text, kind }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), 2500);
  }, []);
  return (
    <ToastCtx.Provider value={push}>
      {props.children}
      <div className="toasts" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.kind}`}>
            {t.text}
          </div>
        ))}
      </div>
    </ToastCtx.Provider>
  );
}

// ---------------------------------------------------------------- hooks

/** Loads data on mount (and when `deps` change); `reload` refetches. */
const DRAFT = 'ik:draft:';

/**
 * State kept in this browser's local storage as well (JSON, under `ik:draft:<scope>:<name>`), so unsent work
 * survives an expired session, a reload or a closed tab; `clearDrafts(scope)` forgets it once it is stored.
 */
export function useDraft<T>(
  scope: string | number,
  name: string,
  initial: () => T,
  codec: { save: (v: T) => unknown; load: (raw: unknown) => T } = { save: (v) => v, load: (raw) => raw as T },
) {
  const key = `${DRAFT}${scope}:${name}`;
  const [value, setValue] = useState<T>(() => {
    try {
      const raw = localStorage.getItem(key);
      return raw === null ? initial() : codec.load(JSON.parse(raw));
    } catch {
      return initial();
    }
  });
  // biome-ignore lint/correctness/useExhaustiveDependencies: the codec is fixed per call site
  useEffect(() => {
    try {
      localStorage.setItem(key, JSON.stringify(codec.save(value)));
    } catch {
      // Storage full or disabled: the draft lives only in this page.
    }
  }, [key, value]);
  return [value, setValue] as const;
}

export function clearDrafts(scope: string | number) {
  const prefix = `${DRAFT}${scope}:`;
  for (const k of Object.keys(localStorage)) if (k.startsWith(prefix)) localStorage.removeItem(k);
}

export function useLoad<T>(fn: () => Promise<T>, deps: unknown[] = []) {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [n, setN] = useState(0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: caller-controlled deps
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [n, ...deps]);
  return { ...state, reload: () => setN((x) => x + 1) };
}

/** Window-level shortcuts that stay quiet while the user types in a field. */
export function useKeys(map: Record<string, (e: KeyboardEvent) => void>, enabled = true) {
  useEffect(() => {
    if (!enabled) return;
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable))
        return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const f = map[e.key.toLowerCase()];
      if (f) {
        e.preventDefault();
        f(e);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [map, enabled]);
}
