/**
 * Response schemas (TypeBox), declared like the request schemas in schemas.ts. Routes name them in
 * `schema.response`, so Fastify serialises exactly these fields (nothing internal leaks by accident) and the type
 * provider checks each handler's return value against them at compile time; the web client (web/src/api.ts) takes
 * its types from here, not from the store.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { JobKind as JobKindName, JobState as JobStateName, ModelKind as ModelKindName } from '../store/index.js';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Split = Type.Union([Type.Literal('training'), Type.Literal('heldout')]);
const TaskKind = Type.Union([Type.Literal('demonstration'), Type.Literal('ranking'), Type.Literal('ab')]);

export const User = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  role: Type.Union([Type.Literal('admin'), Type.Literal('labeler')]),
  group: Nullable(Type.String()),
  split: Nullable(Split),
  screeningPassed: Type.Boolean(),
  disabled: Type.Boolean(),
});

export const Me = Type.Object({ user: User, csrfToken: Type.String(), expiresAt: Type.Number() });

export const Settings = Type.Object({
  candidateModels: Type.Array(Type.String()),
  k: Type.Integer(),
  overlap: Type.Number(),
  overlapLabelers: Type.Integer(),
  chatModels: Type.Array(Type.String()),
  chatCompareEvery: Type.Integer(),
  screeningPassThreshold: Type.Number(),
  screeningRequired: Type.Boolean(),
  screeningMaxAttempts: Type.Integer(),
  assignmentTimeoutMinutes: Type.Integer(),
  goldRate: Type.Number(),
  guidelines: Type.String(),
});

export const PromptRow = Type.Object({
  id: Type.Integer(),
  text: Type.String(),
  split: Split,
  source: Type.String(),
  createdAt: Type.Number(),
  archived: Type.Boolean(),
});

export const TaskRow = Type.Object({
  id: Type.Integer(),
  kind: TaskKind,
  split: Split,
  target: Type.Integer(),
  createdAt: Type.Number(),
  archived: Type.Boolean(),
  prompt: Type.String(),
  /** Labelers who completed it (rejected work does not count). */
  done: Type.Integer(),
  open: Type.Integer(),
});

/** Best → worst; responses ranked equal as an inner array (a tie). */
export const Ranking = Type.Array(Type.Union([Type.Integer(), Type.Array(Type.Integer())]));

export const GoldRow = Type.Object({
  id: Type.Integer(),
  prompt: Type.String(),
  responses: Type.Array(Type.String()),
  ranking: Ranking,
  inScreening: Type.Boolean(),
  archived: Type.Boolean(),
});

export const CreatedTasks = Type.Object({
  ids: Type.Array(Type.Integer()),
  skipped: Type.Array(Type.Object({ promptId: Type.Integer(), taskId: Type.Integer(), message: Type.String() })),
});

export const ScreeningItem = Type.Object({
  goldId: Type.Integer(),
  prompt: Type.String(),
  responses: Type.Array(Type.String()),
});

export const ScreeningState = Type.Object({
  required: Type.Boolean(),
  passed: Type.Boolean(),
  attemptsLeft: Nullable(Type.Integer()),
  items: Type.Array(ScreeningItem),
});

export const ScreeningResult = Type.Object({
  passed: Type.Boolean(),
  attemptsLeft: Nullable(Type.Integer()),
  resultId: Type.Integer(),
});

const AssignmentBase = {
  id: Type.Integer(),
  number: Type.Integer(),
  status: Type.Union([Type.Literal('open'), Type.Literal('done'), Type.Literal('expired'), Type.Literal('skipped')]),
  expiresAt: Nullable(Type.Number()),
  prompt: Type.String(),
};
export const Assignment = Type.Union([
  Type.Object({ ...AssignmentBase, kind: Type.Literal('demonstration') }),
  Type.Object({ ...AssignmentBase, kind: Type.Literal('ranking'), responses: Type.Array(Type.String()) }),
  Type.Object({ ...AssignmentBase, kind: Type.Literal('ab'), a: Type.String(), b: Type.String() }),
]);

export const SubmitResult = Type.Object({ assignmentId: Type.Integer(), kind: TaskKind, storedId: Type.Integer() });

export const ConversationSummary = Type.Object({
  id: Type.Integer(),
  title: Type.String(),
  updatedAt: Type.Number(),
  messages: Type.Integer(),
});

export const Conversation = Type.Object({
  id: Type.Integer(),
  title: Type.String(),
  updatedAt: Type.Number(),
  messages: Type.Array(
    Type.Object({ role: Type.Union([Type.Literal('user'), Type.Literal('assistant')]), content: Type.String() }),
  ),
  pendingPair: Nullable(Type.Object({ pairId: Type.Integer(), a: Type.String(), b: Type.String() })),
});

const Rate = Nullable(Type.Number());
export const Dashboard = Type.Object({
  datasets: Type.Object({
    prompts: Type.Object({ training: Type.Integer(), heldout: Type.Integer() }),
    tasks: Type.Object({ open: Type.Integer(), done: Type.Integer(), total: Type.Integer() }),
    demonstrations: Type.Integer(),
    rankings: Type.Integer(),
    pairwiseFromRankings: Type.Integer(),
    comparisons: Type.Object({ eval: Type.Integer(), chat: Type.Integer(), pairwise: Type.Integer() }),
    goldItems: Type.Integer(),
  }),
  agreement: Type.Object({
    overlappingTasks: Type.Integer(),
    labelerPairs: Type.Integer(),
    meanPairwiseAgreement: Rate,
  }),
  labelers: Type.Array(
    Type.Object({
      id: Type.Integer(),
      username: Type.String(),
      group: Nullable(Type.String()),
      completed: Type.Integer(),
      perHour: Rate,
      lastHour: Type.Integer(),
      goldAgreement: Rate,
      goldChecks: Type.Integer(),
      screeningPassed: Type.Boolean(),
      peerAgreement: Rate,
    }),
  ),
});

const Review = Type.Union([Type.Literal('accepted'), Type.Literal('rejected')]);
const Choice = Type.Union([Type.Literal('a'), Type.Literal('b'), Type.Literal('tie')]);

/** One piece of submitted work in the review queue, with what was submitted. */
export const Submission = Type.Object({
  assignmentId: Type.Integer(),
  taskId: Type.Integer(),
  kind: TaskKind,
  prompt: Type.String(),
  promptId: Type.Integer(),
  userId: Type.Integer(),
  username: Type.String(),
  completedAt: Nullable(Type.Number()),
  review: Nullable(Review),
  reviewReason: Nullable(Type.String()),
  completion: Nullable(Type.String()),
  responses: Nullable(Type.Array(Type.String())),
  ranking: Nullable(Ranking),
  choice: Nullable(Choice),
});

export const Report = Type.Object({
  id: Type.Integer(),
  promptId: Type.Integer(),
  prompt: Type.String(),
  taskId: Type.Integer(),
  username: Type.String(),
  reason: Type.String(),
  createdAt: Type.Number(),
  resolution: Nullable(Type.Union([Type.Literal('dismissed'), Type.Literal('archived')])),
  promptArchived: Type.Boolean(),
});

export const Group = Type.Object({ id: Type.Integer(), name: Type.String(), split: Split });

/** The chat stream's lines (NDJSON, one object a line); the route streams them, so Fastify does not serialise them. */
export const ChatEvent = Type.Union([
  Type.Object({ type: Type.Literal('conversation'), id: Type.Integer(), title: Type.String() }),
  Type.Object({ type: Type.Literal('context'), droppedMessages: Type.Integer(), message: Type.String() }),
  Type.Object({ type: Type.Literal('compare'), pairId: Type.Integer(), a: Type.String(), b: Type.String() }),
  Type.Object({ type: Type.Literal('token'), text: Type.String() }),
  Type.Object({ type: Type.Literal('error'), error: Type.String(), message: Type.String() }),
  Type.Object({ type: Type.Literal('done'), reply: Type.Integer() }),
]);

const WinRate = Type.Object({
  /** Share of comparisons won, a tie counted as half. */
  winRate: Type.Number(),
  /** 95 % Wilson interval. */
  lo: Type.Number(),
  hi: Type.Number(),
  wins: Type.Integer(),
  ties: Type.Integer(),
  losses: Type.Integer(),
  n: Type.Integer(),
});

/** Every model name the admin can pick, and the versions served side by side (GET /api/admin/models). */
export const AdminModels = Type.Object({
  models: Type.Array(Type.String()),
  chatModel: Type.String(),
  served: Type.Array(
    Type.Object({ name: Type.String(), bytes: Type.Integer(), loaded: Type.Boolean(), inFlight: Type.Integer() }),
  ),
  /** The serving budget (bytes of weights held at once); null when no version is served. */
  serveMemory: Nullable(Type.Integer()),
});

export const EvalRow = Type.Object({
  id: Type.Integer(),
  modelA: Type.String(),
  modelB: Type.String(),
  createdAt: Type.Number(),
  tasks: Type.Integer(),
  done: Type.Integer(),
  /** Model A's win rate against model B so far. */
  result: WinRate,
  /**
   * Inter-labeler agreement: the share of pairs of answers to one prompt that pick the same winner (or both a tie),
   * over `pairs` such pairs on `tasks` prompts answered twice or more; null until there is one.
   */
  agreement: Type.Object({ rate: Nullable(Type.Number()), pairs: Type.Integer(), tasks: Type.Integer() }),
});

export const EvalRatings = Type.Object({
  baseline: Nullable(Type.String()),
  /** Bradley–Terry strengths on the Elo scale (mean 1000), best first, with 95 % bootstrap intervals. */
  elo: Type.Array(
    Type.Object({
      model: Type.String(),
      rating: Type.Number(),
      lo: Type.Number(),
      hi: Type.Number(),
      games: Type.Integer(),
    }),
  ),
  /** Each version's win rate against the baseline on held-out prompts (the paper's Figure 1). */
  vsBaseline: Type.Array(Type.Intersect([Type.Object({ model: Type.String() }), WinRate])),
  /** Chat comparisons between two versions, from the first one's side; never mixed into the held-out figures. */
  chat: Type.Array(Type.Intersect([Type.Object({ modelA: Type.String(), modelB: Type.String() }), WinRate])),
  /** Chat comparisons between two samples of one version (counted, not rated). */
  chatSameModel: Type.Integer(),
});

const Json = Type.Record(Type.String(), Type.Unknown());
const ModelKind = Type.Union(
  ['base', 'sft', 'rm', 'ppo', 'dpo', 'grpo', 'registered'].map((k) => Type.Literal(k as ModelKindName)),
);

/** A model version in the registry, with its lineage (ancestor ids, nearest first). */
export const ModelVersion = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  path: Type.String(),
  kind: ModelKind,
  head: Type.Union([Type.Literal('causal'), Type.Literal('scalar')]),
  parentId: Nullable(Type.Integer()),
  jobId: Nullable(Type.Integer()),
  dataHash: Nullable(Type.String()),
  config: Nullable(Json),
  metrics: Nullable(Json),
  params: Nullable(Type.Number()),
  createdAt: Type.Number(),
  lineage: Type.Array(Type.Integer()),
});

const JobState = Type.Union(
  ['queued', 'running', 'done', 'failed', 'cancelled'].map((k) => Type.Literal(k as JobStateName)),
);
const JobProgress = Type.Object({ step: Type.Integer(), total: Type.Integer(), etaS: Nullable(Type.Number()) });

/** A training job as the job list shows it. */
export const JobRow = Type.Object({
  id: Type.Integer(),
  kind: Type.Union(['sft', 'rm', 'ppo', 'dpo', 'grpo'].map((k) => Type.Literal(k as JobKindName))),
  state: JobState,
  baseModelId: Type.Integer(),
  rewardModelId: Nullable(Type.Integer()),
  dataHash: Type.String(),
  dataCount: Type.Integer(),
  attempts: Type.Integer(),
  maxAttempts: Type.Integer(),
  cancelRequested: Type.Boolean(),
  progress: Nullable(JobProgress),
  error: Nullable(Type.String()),
  model: Nullable(Type.Integer()),
  createdAt: Type.Number(),
  startedAt: Nullable(Type.Number()),
  finishedAt: Nullable(Type.Number()),
});

/** One job in full: its config, metrics.jsonl rows so far and the tail of its log. */
export const JobDetail = Type.Composite([
  JobRow,
  Type.Object({ config: Json, ptx: Nullable(Type.String()), metrics: Type.Array(Json), log: Type.String() }),
]);

/** What the Train screen builds its form from: per job kind, the trainer config's JSON schema (with defaults). */
export const JobKindInfo = Type.Object({
  kind: Type.String(),
  data: Type.String(),
  needsRewardModel: Type.Boolean(),
  schema: Json,
  /** The form's sections (see jobs/kinds.ts formGroups): every schema field in exactly one. */
  groups: Type.Array(
    Type.Object({
      title: Type.String(),
      fields: Type.Array(Type.String()),
      advanced: Type.Boolean(),
      withPtx: Type.Boolean(),
    }),
  ),
});

/** The bodies of each route's 200 (201 where it creates), by name: what `schema.response` holds. */
export const responses = {
  Me,
  User: Type.Object({ user: User }),
  Users: Type.Object({ users: Type.Array(User) }),
  Settings: Type.Object({ settings: Settings }),
  Prompts: Type.Object({ total: Type.Integer(), prompts: Type.Array(PromptRow) }),
  Ids: Type.Object({ ids: Type.Array(Type.Integer()) }),
  Tasks: Type.Object({ total: Type.Integer(), tasks: Type.Array(TaskRow) }),
  CreatedTasks,
  Gold: Type.Object({ gold: Type.Array(GoldRow) }),
  Dashboard,
  ScreeningState,
  ScreeningResult,
  NextTask: Type.Object({ assignment: Nullable(Assignment) }),
  Assignment: Type.Object({ assignment: Assignment }),
  SubmitResult,
  Conversations: Type.Object({ conversations: Type.Array(ConversationSummary) }),
  Conversation: Type.Object({ conversation: Conversation }),
  Ok: Type.Object({ ok: Type.Boolean() }),
  Groups: Type.Object({ groups: Type.Array(Group) }),
  Group: Type.Object({ group: Group }),
  AdminScreening: Type.Object({
    items: Type.Array(GoldRow),
    passThreshold: Type.Number(),
    required: Type.Boolean(),
  }),
  ScreeningSet: Type.Object({ ok: Type.Boolean(), goldIds: Type.Array(Type.Integer()) }),
  Imported: Type.Object({ imported: Type.Integer() }),
  /** A JSONL import refused: every bad line (the first 100) as file:line. */
  InvalidJsonl: Type.Object({
    error: Type.Literal('invalid_jsonl'),
    message: Type.String(),
    details: Type.Array(
      Type.Object({ file: Type.String(), line: Type.Integer(), message: Type.String(), text: Type.String() }),
    ),
  }),
  ChatChoice: Type.Object({ ok: Type.Boolean(), pairId: Type.Integer() }),
  Submissions: Type.Object({ total: Type.Integer(), submissions: Type.Array(Submission) }),
  Submission: Type.Object({ submission: Submission }),
  Reports: Type.Object({ reports: Type.Array(Report) }),
  Updated: Type.Object({ id: Type.Integer() }),
  Skipped: Type.Object({ assignmentId: Type.Integer() }),
  Reported: Type.Object({ reportId: Type.Integer() }),
  Guidelines: Type.Object({ guidelines: Type.String() }),
  AdminModels,
  CreatedEval: Type.Object({
    id: Type.Integer(),
    tasks: Type.Integer(),
    reused: Type.Integer(),
    /** Prompts left out: the two versions gave the same or an empty answer every time (with the reason). */
    dropped: Type.Array(Type.Object({ promptId: Type.Integer(), message: Type.String() })),
  }),
  Eval: Type.Object({ eval: EvalRow }),
  Evals: Type.Object({ evals: Type.Array(EvalRow) }),
  EvalRatings,
  // modelsDir: what relative paths are relative to, on this server (null when it queues no jobs).
  Models: Type.Object({ models: Type.Array(ModelVersion), modelsDir: Type.Union([Type.String(), Type.Null()]) }),
  Model: Type.Object({ model: ModelVersion }),
  Jobs: Type.Object({ jobs: Type.Array(JobRow) }),
  Job: Type.Object({ job: JobDetail }),
  JobId: Type.Object({ id: Type.Integer() }),
  JobKinds: Type.Object({ kinds: Type.Array(JobKindInfo) }),
};

/**
 * Routes whose 200 is not JSON, with what they send instead (the rest declare a schema above): the client reads
 * these as text or a stream.
 */
export const NON_JSON_ROUTES: Record<string, string> = {
  'GET /api/admin/export/:kind': 'JSONL records (application/x-ndjson)',
  'POST /api/chat': 'a stream of ChatEvent lines (application/x-ndjson)',
  'GET /api/admin/jobs/:id/chart.svg': "a job's loss curves (SVG)",
  'GET /api/admin/evals/figure.svg': "the win rates against the baseline, the paper's Figure 1 (SVG)",
  'GET /report': 'a redirect to /report/',
  'GET /report/*': "the run's report files",
  'GET /': 'the web app',
  'GET /*': 'the web app',
};

export type MeBody = Static<typeof Me>;
export type UserBody = Static<typeof User>;
export type SettingsBody = Static<typeof Settings>;
export type PromptRowBody = Static<typeof PromptRow>;
export type TaskRowBody = Static<typeof TaskRow>;
export type GoldRowBody = Static<typeof GoldRow>;
export type CreatedTasksBody = Static<typeof CreatedTasks>;
export type ScreeningItemBody = Static<typeof ScreeningItem>;
export type ScreeningStateBody = Static<typeof ScreeningState>;
export type ScreeningResultBody = Static<typeof ScreeningResult>;
export type AssignmentBody = Static<typeof Assignment>;
export type SubmitResultBody = Static<typeof SubmitResult>;
export type ConversationSummaryBody = Static<typeof ConversationSummary>;
export type ConversationBody = Static<typeof Conversation>;
export type EvalRowBody = Static<typeof EvalRow>;
export type AdminModelsBody = Static<typeof AdminModels>;
export type EvalRatingsBody = Static<typeof EvalRatings>;
export type DashboardBody = Static<typeof Dashboard>;
export type SubmissionBody = Static<typeof Submission>;
export type ReportBody = Static<typeof Report>;
export type GroupBody = Static<typeof Group>;
export type ChatEventBody = Static<typeof ChatEvent>;
export type RankingBody = Static<typeof Ranking>;
/** The body of the response named `K` in `responses`. */
export type ResponseBody<K extends keyof typeof responses> = Static<(typeof responses)[K]>;
export type ModelVersionBody = Static<typeof ModelVersion>;
export type JobRowBody = Static<typeof JobRow>;
export type JobDetailBody = Static<typeof JobDetail>;
export type JobKindInfoBody = Static<typeof JobKindInfo>;
