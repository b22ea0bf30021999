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
  candidateModel: Type.String(),
  k: Type.Integer(),
  overlap: Type.Number(),
  overlapLabelers: Type.Integer(),
  chatCompareEvery: Type.Integer(),
  screeningPassThreshold: Type.Number(),
  screeningRequired: Type.Boolean(),
  screeningMaxAttempts: Type.Integer(),
  assignmentTimeoutMinutes: Type.Integer(),
  goldRate: Type.Number(),
});

export const PromptRow = Type.Object({
  id: Type.Integer(),
  text: Type.String(),
  split: Split,
  source: Type.String(),
  createdAt: Type.Number(),
});

export const TaskRow = Type.Object({
  id: Type.Integer(),
  kind: TaskKind,
  split: Split,
  target: Type.Integer(),
  createdAt: Type.Number(),
  prompt: Type.String(),
  done: Type.Integer(),
  open: Type.Integer(),
});

export const GoldRow = Type.Object({
  id: Type.Integer(),
  prompt: Type.String(),
  responses: Type.Array(Type.String()),
  ranking: Type.Array(Type.Integer()),
  inScreening: Type.Boolean(),
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
  status: Type.Union([Type.Literal('open'), Type.Literal('done'), Type.Literal('expired')]),
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
  Models: Type.Object({ models: Type.Array(ModelVersion) }),
  Model: Type.Object({ model: ModelVersion }),
  Jobs: Type.Object({ jobs: Type.Array(JobRow) }),
  Job: Type.Object({ job: JobDetail }),
  JobId: Type.Object({ id: Type.Integer() }),
  JobKinds: Type.Object({ kinds: Type.Array(JobKindInfo) }),
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
export type DashboardBody = Static<typeof Dashboard>;
export type ModelVersionBody = Static<typeof ModelVersion>;
export type JobRowBody = Static<typeof JobRow>;
export type JobDetailBody = Static<typeof JobDetail>;
export type JobKindInfoBody = Static<typeof JobKindInfo>;
