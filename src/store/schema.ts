/**
 * Typed database schema (Kysely). Times are epoch milliseconds (BIGINT, read as numbers on both dialects); JSON
 * columns are TEXT holding JSON; booleans are INTEGER 0/1 on both dialects.
 */
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

export type Role = 'admin' | 'labeler';
export type Split = 'training' | 'heldout';
export type TaskKind = 'demonstration' | 'ranking' | 'ab';
export type ComparisonKind = 'eval' | 'chat' | 'pairwise';
export type Choice = 'a' | 'b' | 'tie';

export interface GroupsTable {
  id: Generated<number>;
  name: string;
  /** Which prompt split this group's labelers work on. */
  split: Split;
}

export interface UsersTable {
  id: Generated<number>;
  username: string;
  password_hash: string;
  role: Role;
  group_id: number | null;
  screening_passed: ColumnType<number, number | undefined, number>;
  chat_replies: ColumnType<number, number | undefined, number>;
  disabled: ColumnType<number, number | undefined, number>;
  created_at: number;
}

export interface SessionsTable {
  /** sha256 of the cookie token; the token itself is never stored. */
  id: string;
  user_id: number;
  csrf_token: string;
  created_at: number;
  expires_at: number;
}

export interface PromptsTable {
  id: Generated<number>;
  text: string;
  split: Split;
  source: string;
  created_at: number;
  /** Archived (the admin's delete): kept, but no longer labeled or exported. */
  archived_at: ColumnType<number | null, number | null | undefined, number | null>;
}

export interface CandidateSetsTable {
  id: Generated<number>;
  prompt_id: number;
  /**
   * Name of the model (candidate source) that produced the responses; 'mixed' when several did (A/B sets, rankings
   * from several versions: each response names its own).
   */
  model: string;
  /** 1 when the set was imported as a candidate pool and is not yet used by a task. */
  pooled: ColumnType<number, number | undefined, number>;
  created_at: number;
}

export interface ResponsesTable {
  id: Generated<number>;
  set_id: number;
  idx: number;
  text: string;
  model: string;
}

export interface TasksTable {
  id: Generated<number>;
  kind: TaskKind;
  prompt_id: number;
  set_id: number | null;
  split: Split;
  /** How many distinct labelers should complete this task (1, or 2+ for overlap). */
  target: number;
  /** Assignments handed out and not expired; kept in the transaction that hands one out or takes it back. */
  assigned_count: ColumnType<number, number | undefined, number>;
  /** Set on the hidden task that mixes this gold item into live ranking work. */
  gold_id: ColumnType<number | null, number | null | undefined, number | null>;
  created_at: number;
  /** Archived (the admin's delete, or its prompt's): no longer handed out; its submissions leave the exports. */
  archived_at: ColumnType<number | null, number | null | undefined, number | null>;
}

export interface AssignmentsTable {
  id: Generated<number>;
  task_id: number;
  user_id: number;
  /** The labeler's own count: their first assignment is 1 (ids are shared by everyone). */
  number: number;
  status: 'open' | 'done';
  /** A/B: 1 when response order is swapped for this labeler. */
  swapped: ColumnType<number, number | undefined, number>;
  created_at: number;
  completed_at: number | null;
  /** Deadline for submitting; null when assignments do not expire. */
  expires_at: number | null;
  /** When the deadline passed and the task went back to the pool; the labeler may still submit while it has room. */
  expired_at: number | null;
  /** When the labeler skipped it (or reported its prompt): the seat went back, and it never comes back to them. */
  skipped_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** The admin's review of the submitted work: rejected work leaves every export. */
  review: ColumnType<Review | null, Review | null | undefined, Review | null>;
  review_reason: ColumnType<string | null, string | null | undefined, string | null>;
  reviewed_by: ColumnType<number | null, number | null | undefined, number | null>;
  reviewed_at: ColumnType<number | null, number | null | undefined, number | null>;
}

export type Review = 'accepted' | 'rejected';

/** A labeler's report of a prompt (harmful, unclear, broken...), shown to admins in the review queue. */
export interface ReportsTable {
  id: Generated<number>;
  prompt_id: number;
  assignment_id: number;
  user_id: number;
  reason: string;
  created_at: number;
  resolution: 'dismissed' | 'archived' | null;
  resolved_by: number | null;
  resolved_at: number | null;
}

export interface DemonstrationsTable {
  id: Generated<number>;
  prompt_id: number;
  completion: string;
  assignment_id: number | null;
  user_id: number | null;
  /** Free-form labeler name (imported records). */
  labeler: string | null;
  created_at: number;
}

export interface RankingsTable {
  id: Generated<number>;
  prompt_id: number;
  set_id: number;
  /** JSON number[]: response indices best → worst. */
  ranking: string;
  /** JSON number[] | null: 1..7 score per response index. */
  likert: string | null;
  /** JSON Record<flag, number[]> | null: response indices carrying each flag. */
  flags: string | null;
  assignment_id: number | null;
  user_id: number | null;
  labeler: string | null;
  created_at: number;
}

export interface ComparisonsTable {
  id: Generated<number>;
  kind: ComparisonKind;
  prompt: string;
  a_text: string;
  b_text: string;
  model_a: string | null;
  model_b: string | null;
  /** null while a chat pair waits for the user's choice. */
  choice: Choice | null;
  assignment_id: number | null;
  user_id: number | null;
  labeler: string | null;
  /** Chat comparisons: the conversation the chosen reply continues. */
  conversation_id: ColumnType<number | null, number | null | undefined, number | null>;
  created_at: number;
}

export interface ConversationsTable {
  id: Generated<number>;
  user_id: number;
  title: string;
  created_at: number;
  /** Time of the latest message, for listing recent conversations first. */
  updated_at: number;
}

export interface ChatMessagesTable {
  id: Generated<number>;
  conversation_id: number;
  role: 'user' | 'assistant';
  content: string;
  created_at: number;
}

export interface GoldItemsTable {
  id: Generated<number>;
  prompt: string;
  /** JSON string[] */
  responses: string;
  /** JSON number[] best → worst */
  ranking: string;
  in_screening: ColumnType<number, number | undefined, number>;
  created_at: number;
  /** Archived: out of screening and live checks; its answers are kept. */
  archived_at: ColumnType<number | null, number | null | undefined, number | null>;
}

/** A labeler's ranking of a gold item met during live work (not a training ranking). */
export interface GoldAnswersTable {
  id: Generated<number>;
  gold_id: number;
  user_id: number;
  assignment_id: number;
  /** JSON number[] best → worst */
  ranking: string;
  /** Pairwise agreement with the gold ranking, 0..1. */
  agreement: number;
  created_at: number;
}

export interface ScreeningResultsTable {
  id: Generated<number>;
  user_id: number;
  score: number;
  passed: number;
  /** JSON [{goldId, ranking}] */
  answers: string;
  created_at: number;
}

export interface SettingsTable {
  key: string;
  /** JSON value */
  value: string;
}

export interface IdempotencyKeysTable {
  user_id: number;
  key: string;
  route: string;
  /** sha256 of the request body, so a key reused for a different body is refused. */
  body_hash: string;
  status: number;
  response: string;
  created_at: number;
}

/** One failed sign-in; rows older than the throttle's window are deleted as new failures come in. */
export interface LoginFailuresTable {
  id: Generated<number>;
  username: string;
  /** The client's address as the server saw it. */
  address: string;
  at: number;
}

/** A blind A/B evaluation of two model versions on held-out prompts. */
export interface EvalsTable {
  id: Generated<number>;
  model_a: string;
  model_b: string;
  created_by: number | null;
  created_at: number;
}

/** The A/B tasks that carry an eval (a task may serve several evals of the same pair). */
export interface EvalTasksTable {
  eval_id: number;
  task_id: number;
}

export type ModelKind = 'base' | 'sft' | 'rm' | 'ppo' | 'dpo' | 'grpo' | 'registered';
/** A causal LM, or a scalar-head model (a reward or value model). */
export type ModelHead = 'causal' | 'scalar';
export type JobKind = 'sft' | 'rm' | 'ppo' | 'dpo' | 'grpo';
export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** A model version in the registry: a model folder and where it came from. */
export interface ModelsTable {
  id: Generated<number>;
  name: string;
  /** The folder (unique): relative to the shared models folder when inside it, else absolute. */
  path: string;
  kind: ModelKind;
  head: ModelHead;
  /** The model it was trained from (null for a base or a folder registered by hand). */
  parent_id: number | null;
  job_id: number | null;
  /** sha256 of the data snapshot it was trained on. */
  data_hash: string | null;
  /** JSON: the trainer's config. */
  config: string | null;
  /** JSON: the final metrics. */
  metrics: string | null;
  params: number | null;
  created_at: number;
}

/** A training job: queued by an admin, claimed by one worker at a time (see jobs.ts). */
export interface JobsTable {
  id: Generated<number>;
  kind: JobKind;
  state: JobState;
  base_model_id: number;
  reward_model_id: number | null;
  /** JSON: the resolved config (defaults filled in), as the trainer gets it. */
  config: string;
  /**
   * The job folder, relative to the models folder: data snapshot, config file and the run (`model/`: checkpoints,
   * metrics.jsonl, the output model).
   */
  dir: string;
  data_hash: string;
  data_count: number;
  /** PPO-ptx: the pretraining corpus file. */
  ptx: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  max_attempts: number;
  worker: string | null;
  heartbeat_at: number | null;
  cancel_requested: ColumnType<number, number | undefined, number>;
  /** JSON {step, total, etaS}. */
  progress: string | null;
  /** JSON: metrics.jsonl rows (thinned to a few hundred). */
  metrics: string | null;
  /** The tail of the trainer's output. */
  log: ColumnType<string, string | undefined, string>;
  error: string | null;
  model_id: number | null;
  created_by: number | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface Database {
  groups: GroupsTable;
  users: UsersTable;
  sessions: SessionsTable;
  prompts: PromptsTable;
  candidate_sets: CandidateSetsTable;
  responses: ResponsesTable;
  tasks: TasksTable;
  assignments: AssignmentsTable;
  demonstrations: DemonstrationsTable;
  rankings: RankingsTable;
  comparisons: ComparisonsTable;
  gold_items: GoldItemsTable;
  gold_answers: GoldAnswersTable;
  conversations: ConversationsTable;
  chat_messages: ChatMessagesTable;
  screening_results: ScreeningResultsTable;
  settings: SettingsTable;
  idempotency_keys: IdempotencyKeysTable;
  login_failures: LoginFailuresTable;
  evals: EvalsTable;
  eval_tasks: EvalTasksTable;
  reports: ReportsTable;
  models: ModelsTable;
  jobs: JobsTable;
}

export type User = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type Session = Selectable<SessionsTable>;
export type Prompt = Selectable<PromptsTable>;
export type Task = Selectable<TasksTable>;
export type Assignment = Selectable<AssignmentsTable>;
export type GoldItem = Selectable<GoldItemsTable>;

/** The paper's per-response metadata flags (InstructGPT, Table 3 / Appendix B). */
export const FLAGS = [
  'fails_to_follow_instruction',
  'hallucination',
  'inappropriate_for_customer_assistant',
  'sexual_content',
  'violent_content',
  'encourages_violence_abuse_self_harm',
  'denigrates_protected_class',
  'harmful_advice',
  'expresses_opinion',
  'expresses_moral_judgment',
] as const;
export type Flag = (typeof FLAGS)[number];
