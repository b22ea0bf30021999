/**
 * The HTTP client: cookie session + X-CSRF-Token (from login or GET /api/me) on every state change,
 * an Idempotency-Key on submissions, typed errors, and the chat NDJSON stream.
 */
// Request and response types come from the API's own schemas (src/server/schemas.ts, responses.ts), never from the store.
import type {
  AdminModelsBody as AdminModels,
  AssignmentBody as AssignmentView,
  ChatEventBody,
  ConversationBody as Conversation,
  ConversationSummaryBody as ConversationSummary,
  CreatedTasksBody,
  DashboardBody as Dashboard,
  EvalRatingsBody as EvalRatings,
  EvalRowBody as EvalRow,
  GoldRowBody as GoldRow,
  JobDetailBody as JobDetail,
  JobKindInfoBody as JobKindInfo,
  JobRowBody as JobRow,
  MeBody as Me,
  ModelVersionBody as ModelVersion,
  PromptRowBody as PromptRow,
  UserBody as PublicUser,
  ResponseBody as R,
  RankingBody as Ranking,
  ReportBody as Report,
  ScreeningItemBody as ScreeningItem,
  SettingsBody as Settings,
  SubmissionBody as Submission,
  TaskRowBody as TaskRow,
} from '../../src/server/responses.js';
import type {
  ChatBody,
  SettingsPatch,
  SubmissionQueryBody,
  SubmitBody,
  TaskQueryBody,
} from '../../src/server/schemas.js';

export type {
  AdminModels,
  AssignmentView,
  ChatBody,
  Conversation,
  ConversationSummary,
  Dashboard,
  EvalRatings,
  EvalRow,
  GoldRow,
  JobDetail,
  JobKindInfo,
  JobRow,
  Me,
  ModelVersion,
  PromptRow,
  PublicUser,
  Ranking,
  Report,
  ScreeningItem,
  Settings,
  SettingsPatch,
  Submission,
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
  users: () => get<R<'Users'>>('/api/admin/users'),
  createUser: (b: { username: string; password: string; role: 'admin' | 'labeler'; group?: string }) =>
    post<R<'User'>>('/api/admin/users', b),
  patchUser: (id: number, b: { group?: string; screeningPassed?: boolean; disabled?: boolean; password?: string }) =>
    request<R<'User'>>('PATCH', `/api/admin/users/${id}`, b),
  groups: () => get<R<'Groups'>>('/api/admin/groups'),
  createGroup: (name: string, split: 'training' | 'heldout') => post<R<'Group'>>('/api/admin/groups', { name, split }),
  settings: () => get<R<'Settings'>>('/api/admin/settings'),
  saveSettings: (s: SettingsPatch) => request<R<'Settings'>>('PUT', '/api/admin/settings', s),
  models: () => get<R<'AdminModels'>>('/api/admin/models'),
  evals: () => get<R<'Evals'>>('/api/admin/evals'),
  createEval: (b: { modelA: string; modelB: string; prompts?: number[]; labelers?: number }) =>
    post<R<'CreatedEval'>>('/api/admin/evals', b),
  evalRatings: (baseline?: string) =>
    get<R<'EvalRatings'>>(`/api/admin/evals/ratings${baseline ? `?baseline=${encodeURIComponent(baseline)}` : ''}`),
  /** The Figure 1 chart (SVG, for an <img>). */
  evalFigureUrl: (baseline?: string) =>
    `/api/admin/evals/figure.svg${baseline ? `?baseline=${encodeURIComponent(baseline)}` : ''}`,
  prompts: (limit: number, offset: number, archived = false) =>
    get<R<'Prompts'>>(`/api/admin/prompts?limit=${limit}&offset=${offset}${archived ? '&archived=true' : ''}`),
  patchPrompt: (id: number, b: { text?: string; split?: 'training' | 'heldout'; archived?: boolean }) =>
    request<R<'Updated'>>('PATCH', `/api/admin/prompts/${id}`, b),
  addPrompts: (prompts: { text: string; split?: 'training' | 'heldout' }[]) =>
    post<R<'Ids'>>('/api/admin/prompts', { prompts }),
  tasks: (q: TaskQuery) => get<R<'Tasks'>>(`/api/admin/tasks?${query(q)}`),
  patchTask: (id: number, b: { target?: number; archived?: boolean }) =>
    request<R<'Updated'>>('PATCH', `/api/admin/tasks/${id}`, b),
  createTasks: (b: {
    kind: 'demonstration' | 'ranking' | 'ab';
    promptIds: number[];
    modelA?: string;
    modelB?: string;
  }) => post<CreatedTasksBody>('/api/admin/tasks', b),
  gold: () => get<R<'Gold'>>('/api/admin/gold'),
  addGold: (b: { prompt: string; responses: string[]; ranking: Ranking }) => post<R<'Ids'>>('/api/admin/gold', b),
  patchGold: (id: number, b: { prompt?: string; responses?: string[]; ranking?: Ranking; archived?: boolean }) =>
    request<R<'Updated'>>('PATCH', `/api/admin/gold/${id}`, b),
  setScreening: (goldIds: number[], passThreshold?: number) =>
    request<R<'ScreeningSet'>>('PUT', '/api/admin/screening', { goldIds, passThreshold }),
  dashboard: () => get<R<'Dashboard'>>('/api/admin/dashboard'),
  // model registry and training jobs
  registry: () => get<{ models: ModelVersion[]; modelsDir: string | null }>('/api/models'),
  registerModel: (path: string, name?: string) => post<{ model: ModelVersion }>('/api/admin/models', { path, name }),
  jobKinds: () => get<{ kinds: JobKindInfo[] }>('/api/admin/jobs/kinds'),
  jobs: () => get<{ jobs: JobRow[] }>('/api/admin/jobs'),
  job: (id: number) => get<{ job: JobDetail }>(`/api/admin/jobs/${id}`),
  createJob: (b: {
    kind: string;
    baseModel: number;
    rewardModel?: number;
    config: Record<string, unknown>;
    ptx?: string;
  }) => post<{ id: number }>('/api/admin/jobs', b),
  cancelJob: (id: number) => post<{ job: JobDetail }>(`/api/admin/jobs/${id}/cancel`),
  importJsonl: (kind: string, text: string, filename?: string) =>
    post<R<'Imported'>>(`/api/admin/import/${kind}`, undefined, { raw: text, filename }),
  // review queue
  submissions: (q: SubmissionQuery) => get<R<'Submissions'>>(`/api/admin/submissions?${query(q)}`),
  review: (assignmentId: number, decision: 'accepted' | 'rejected', reason?: string) =>
    post<R<'Submission'>>(`/api/admin/submissions/${assignmentId}/review`, { decision, reason }),
  reports: (state: 'open' | 'resolved' | 'all' = 'open') => get<R<'Reports'>>(`/api/admin/reports?state=${state}`),
  resolveReport: (id: number, action: 'dismiss' | 'archive') =>
    post<R<'Updated'>>(`/api/admin/reports/${id}/resolve`, { action }),

  // labeler
  screening: () => get<R<'ScreeningState'>>('/api/screening'),
  submitScreening: (answers: { goldId: number; ranking: Ranking }[], idem: string) =>
    post<R<'ScreeningResult'>>('/api/screening/submit', { answers }, { idem }),
  nextTask: () => post<R<'NextTask'>>('/api/tasks/next'),
  submit: (id: number, body: SubmitBody, idem: string) =>
    post<R<'SubmitResult'>>(`/api/assignments/${id}/submit`, body, { idem }),
  guidelines: () => get<R<'Guidelines'>>('/api/guidelines'),
  skip: (id: number, idem: string) => post<R<'Skipped'>>(`/api/assignments/${id}/skip`, {}, { idem }),
  report: (id: number, reason: string, idem: string) =>
    post<R<'Reported'>>(`/api/assignments/${id}/report`, { reason }, { idem }),

  // chat
  conversations: () => get<R<'Conversations'>>('/api/conversations'),
  conversation: (id: number) => get<R<'Conversation'>>(`/api/conversations/${id}`),
  chooseChat: (pairId: number, choice: 'a' | 'b' | 'tie', idem: string) =>
    post<R<'ChatChoice'>>('/api/chat/compare', { pairId, choice }, { idem }),
};

export type TaskQuery = TaskQueryBody;
export type SubmissionQuery = SubmissionQueryBody;

/** One line of the chat stream (an `error` line: `empty_reply`, nothing saved, or `model_error`, what arrived kept). */
export type ChatEvent = ChatEventBody;

// A query string of the defined fields.
const query = (q: object) =>
  new URLSearchParams(Object.entries(q).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])));

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
