/**
 * The HTTP client: cookie session + X-CSRF-Token (from login or GET /api/me) on every state change,
 * an Idempotency-Key on submissions, typed errors, and the chat NDJSON stream.
 */
// Request and response types come from the API's own schemas (src/server/schemas.ts, responses.ts), never from the store.
import type {
  AssignmentBody as AssignmentView,
  ConversationBody as Conversation,
  ConversationSummaryBody as ConversationSummary,
  CreatedTasksBody,
  DashboardBody as Dashboard,
  GoldRowBody as GoldRow,
  JobDetailBody as JobDetail,
  JobKindInfoBody as JobKindInfo,
  JobRowBody as JobRow,
  MeBody as Me,
  ModelVersionBody as ModelVersion,
  PromptRowBody as PromptRow,
  UserBody as PublicUser,
  ScreeningItemBody as ScreeningItem,
  ScreeningResultBody,
  ScreeningStateBody,
  SettingsBody as Settings,
  SubmitResultBody as SubmitResult,
  TaskRowBody as TaskRow,
} from '../../src/server/responses.js';
import type { ChatBody, SettingsPatch, SubmitBody } from '../../src/server/schemas.js';

export type {
  AssignmentView,
  ChatBody,
  Conversation,
  ConversationSummary,
  Dashboard,
  GoldRow,
  JobDetail,
  JobKindInfo,
  JobRow,
  Me,
  ModelVersion,
  PromptRow,
  PublicUser,
  ScreeningItem,
  Settings,
  SettingsPatch,
  SubmitBody,
  TaskRow,
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

let csrf = '';

export function newKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

interface Opts {
  idem?: string;
  /** A raw body (JSONL upload) instead of JSON. */
  raw?: string;
  filename?: string;
}

export async function request<T>(method: string, path: string, body?: unknown, o: Opts = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  if (o.idem) headers['idempotency-key'] = o.idem;
  let payload: string | undefined;
  if (o.raw !== undefined) {
    headers['content-type'] = 'application/x-ndjson';
    if (o.filename) headers['x-filename'] = o.filename.replace(/[^\x20-\x7e]/g, '_');
    payload = o.raw;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const j = (json ?? {}) as { error?: string; message?: string; details?: unknown };
    // An expired session anywhere sends the user back to the sign-in screen (the app listens for this).
    if (res.status === 401 && path !== '/api/me' && path !== '/api/auth/login') {
      window.dispatchEvent(new CustomEvent('ik:signed-out', { detail: { error: j.error, message: j.message } }));
    }
    throw new ApiError(res.status, j.error ?? 'error', j.message ?? `HTTP ${res.status}`, j.details);
  }
  return json as T;
}

const get = <T>(p: string) => request<T>('GET', p);
const post = <T>(p: string, b: unknown = {}, o?: Opts) => request<T>('POST', p, b, o);

export const api = {
  async me(): Promise<Me | null> {
    try {
      const me = await get<Me>('/api/me');
      csrf = me.csrfToken;
      return me;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return null;
      throw e;
    }
  },
  async login(username: string, password: string): Promise<Me> {
    const me = await post<Me>('/api/auth/login', { username, password });
    csrf = me.csrfToken;
    return me;
  },
  async logout() {
    await post('/api/auth/logout');
    csrf = '';
  },

  // admin
  users: () => get<{ users: PublicUser[] }>('/api/admin/users'),
  createUser: (b: { username: string; password: string; role: 'admin' | 'labeler'; group?: string }) =>
    post<{ user: PublicUser }>('/api/admin/users', b),
  patchUser: (id: number, b: { group?: string; screeningPassed?: boolean; disabled?: boolean; password?: string }) =>
    request<{ user: PublicUser }>('PATCH', `/api/admin/users/${id}`, b),
  groups: () => get<{ groups: { id: number; name: string; split: 'training' | 'heldout' }[] }>('/api/admin/groups'),
  createGroup: (name: string, split: 'training' | 'heldout') => post('/api/admin/groups', { name, split }),
  settings: () => get<{ settings: Settings }>('/api/admin/settings'),
  saveSettings: (s: SettingsPatch) => request<{ settings: Settings }>('PUT', '/api/admin/settings', s),
  models: () => get<{ models: string[]; chatModel: string }>('/api/admin/models'),
  prompts: (limit: number, offset: number) =>
    get<{ total: number; prompts: PromptRow[] }>(`/api/admin/prompts?limit=${limit}&offset=${offset}`),
  addPrompts: (prompts: { text: string; split?: 'training' | 'heldout' }[]) =>
    post<{ ids: number[] }>('/api/admin/prompts', { prompts }),
  tasks: (q: TaskQuery) =>
    get<{ total: number; tasks: TaskRow[] }>(
      `/api/admin/tasks?${new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]))}`,
    ),
  createTasks: (b: {
    kind: 'demonstration' | 'ranking' | 'ab';
    promptIds: number[];
    modelA?: string;
    modelB?: string;
  }) => post<CreatedTasksBody>('/api/admin/tasks', b),
  gold: () => get<{ gold: GoldRow[] }>('/api/admin/gold'),
  addGold: (b: { prompt: string; responses: string[]; ranking: number[] }) =>
    post<{ ids: number[] }>('/api/admin/gold', b),
  setScreening: (goldIds: number[], passThreshold?: number) =>
    request('PUT', '/api/admin/screening', { goldIds, passThreshold }),
  dashboard: () => get<Dashboard>('/api/admin/dashboard'),
  // model registry and training jobs
  registry: () => get<{ models: ModelVersion[] }>('/api/models'),
  registerModel: (path: string, name?: string) => post<{ model: ModelVersion }>('/api/admin/models', { path, name }),
  jobKinds: () => get<{ kinds: JobKindInfo[] }>('/api/admin/jobs/kinds'),
  jobs: () => get<{ jobs: JobRow[] }>('/api/admin/jobs'),
  job: (id: number) => get<{ job: JobDetail }>(`/api/admin/jobs/${id}`),
  createJob: (b: { kind: string; baseModel: number; rewardModel?: number; config: Record<string, unknown> }) =>
    post<{ id: number }>('/api/admin/jobs', b),
  cancelJob: (id: number) => post<{ job: JobDetail }>(`/api/admin/jobs/${id}/cancel`),
  importJsonl: (kind: string, text: string, filename?: string) =>
    post<{ imported: number }>(`/api/admin/import/${kind}`, undefined, { raw: text, filename }),

  // labeler
  screening: () => get<ScreeningStateBody>('/api/screening'),
  submitScreening: (answers: { goldId: number; ranking: number[] }[], idem: string) =>
    post<ScreeningResultBody>('/api/screening/submit', { answers }, { idem }),
  nextTask: () => post<{ assignment: AssignmentView | null }>('/api/tasks/next'),
  submit: (id: number, body: SubmitBody, idem: string) =>
    post<SubmitResult>(`/api/assignments/${id}/submit`, body, { idem }),

  // chat
  conversations: () => get<{ conversations: ConversationSummary[] }>('/api/conversations'),
  conversation: (id: number) => get<{ conversation: Conversation }>(`/api/conversations/${id}`),
  chooseChat: (pairId: number, choice: 'a' | 'b' | 'tie', idem: string) =>
    post<{ ok: true }>('/api/chat/compare', { pairId, choice }, { idem }),
};

export interface TaskQuery {
  limit: number;
  offset: number;
  q?: string;
  kind?: 'demonstration' | 'ranking' | 'ab';
  state?: 'open' | 'done';
}

export type ChatEvent =
  | { type: 'conversation'; id: number; title: string }
  | { type: 'token'; text: string }
  | { type: 'compare'; pairId: number; a: string; b: string }
  /** The oldest messages were left out of what the model reads, to fit its context. */
  | { type: 'context'; droppedMessages: number; message: string }
  /** The reply failed: `empty_reply` (nothing was saved) or `model_error` (what arrived was kept). */
  | { type: 'error'; error: 'empty_reply' | 'model_error'; message: string }
  | { type: 'done'; reply: number };

/** POST /api/chat and yield its NDJSON events as they arrive. */
export async function* chatStream(body: ChatBody, signal?: AbortSignal): AsyncGenerator<ChatEvent> {
  const res = await fetch('/api/chat', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: JSON.stringify(body),
    signal,
  });
  if (!res.ok || !res.body) {
    const j = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
    if (res.status === 401) window.dispatchEvent(new CustomEvent('ik:signed-out', { detail: j.message }));
    throw new ApiError(res.status, j.error ?? 'error', j.message ?? `HTTP ${res.status}`);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line) as ChatEvent;
      nl = buf.indexOf('\n');
    }
  }
  if (buf.trim()) yield JSON.parse(buf) as ChatEvent;
}
