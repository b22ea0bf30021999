/**
 * Request schemas (TypeBox), built from the configured limits. The web UI can import the `Static` types.
 */
import { type Static, Type } from '@sinclair/typebox';
import { FLAGS, type JobKind } from '../store/index.js';

export interface Limits {
  maxTextChars: number;
}

export function schemas(l: Limits) {
  const Text = Type.String({ maxLength: l.maxTextChars });
  const Split = Type.Union([Type.Literal('training'), Type.Literal('heldout')]);
  const Role = Type.Union([Type.Literal('admin'), Type.Literal('labeler')]);
  const Choice = Type.Union([Type.Literal('a'), Type.Literal('b'), Type.Literal('tie')]);
  const Username = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' });
  const Password = Type.String({ minLength: 8, maxLength: 256 });
  const Id = Type.Integer({ minimum: 1 });
  /** Best → worst; responses ranked equal as an inner array (a tie), e.g. [2, [0, 3], 1]. */
  const Ranking = Type.Array(Type.Union([Type.Integer(), Type.Array(Type.Integer(), { minItems: 2, maxItems: 9 })]), {
    maxItems: 9,
  });
  const flagProps = Object.fromEntries(
    FLAGS.map((f) => [f, Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 8 }), { maxItems: 9 }))]),
  );
  return {
    Split,
    Login: Type.Object({ username: Type.String({ maxLength: 64 }), password: Type.String({ maxLength: 256 }) }),
    CreateUser: Type.Object({
      username: Username,
      password: Password,
      role: Role,
      group: Type.Optional(Type.String({ maxLength: 64 })),
    }),
    PatchUser: Type.Object({
      group: Type.Optional(Type.String({ maxLength: 64 })),
      screeningPassed: Type.Optional(Type.Boolean()),
      disabled: Type.Optional(Type.Boolean()),
      password: Type.Optional(Password),
    }),
    CreateGroup: Type.Object({ name: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), split: Split }),
    Settings: Type.Object(
      {
        candidateModels: Type.Optional(
          Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 32, uniqueItems: true }),
        ),
        /** Earlier releases' single candidate source: the same as `candidateModels: [name]`. */
        candidateModel: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        k: Type.Optional(Type.Integer({ minimum: 4, maximum: 9 })),
        overlap: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
        overlapLabelers: Type.Optional(Type.Integer({ minimum: 2, maximum: 20 })),
        chatModels: Type.Optional(
          Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 32, uniqueItems: true }),
        ),
        chatCompareEvery: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
        screeningPassThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
        screeningRequired: Type.Optional(Type.Boolean()),
        screeningMaxAttempts: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
        assignmentTimeoutMinutes: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 24 * 60 })),
        goldRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
        guidelines: Type.Optional(Type.String({ maxLength: 20_000 })),
      },
      { additionalProperties: false },
    ),
    AddPrompts: Type.Object({
      prompts: Type.Array(Type.Object({ text: Text, split: Type.Optional(Split) }), { minItems: 1, maxItems: 10000 }),
    }),
    ListQuery: Type.Object({
      split: Type.Optional(Split),
      archived: Type.Optional(Type.Boolean()),
      limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
      offset: Type.Integer({ minimum: 0, default: 0 }),
    }),
    SubmissionQuery: Type.Object({
      limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }),
      offset: Type.Integer({ minimum: 0, default: 0 }),
      taskId: Type.Optional(Id),
      userId: Type.Optional(Id),
      kind: Type.Optional(Type.Union([Type.Literal('demonstration'), Type.Literal('ranking'), Type.Literal('ab')])),
      review: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('accepted'), Type.Literal('rejected')])),
      q: Type.Optional(Type.String({ maxLength: 200 })),
    }),
    ReviewBody: Type.Object(
      {
        decision: Type.Union([Type.Literal('accepted'), Type.Literal('rejected')]),
        reason: Type.Optional(Type.String({ maxLength: 2000 })),
      },
      { additionalProperties: false },
    ),
    ReportQuery: Type.Object({
      state: Type.Union([Type.Literal('open'), Type.Literal('resolved'), Type.Literal('all')], { default: 'open' }),
    }),
    ResolveReport: Type.Object({ action: Type.Union([Type.Literal('dismiss'), Type.Literal('archive')]) }),
    ReportPrompt: Type.Object(
      { reason: Type.String({ pattern: '\\S', maxLength: 2000 }) },
      { additionalProperties: false },
    ),
    PatchPrompt: Type.Object(
      {
        text: Type.Optional(Type.String({ pattern: '\\S', maxLength: l.maxTextChars })),
        split: Type.Optional(Split),
        archived: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false, minProperties: 1 },
    ),
    PatchTask: Type.Object(
      { target: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })), archived: Type.Optional(Type.Boolean()) },
      { additionalProperties: false, minProperties: 1 },
    ),
    PatchGold: Type.Object(
      {
        prompt: Type.Optional(Text),
        responses: Type.Optional(Type.Array(Text, { minItems: 2, maxItems: 9 })),
        ranking: Type.Optional(Ranking),
        archived: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false, minProperties: 1 },
    ),
    TaskQuery: Type.Object({
      limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
      offset: Type.Integer({ minimum: 0, default: 0 }),
      q: Type.Optional(Type.String({ maxLength: 200 })),
      kind: Type.Optional(Type.Union([Type.Literal('demonstration'), Type.Literal('ranking'), Type.Literal('ab')])),
      state: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('done'), Type.Literal('archived')])),
    }),
    CreateTasks: Type.Object({
      kind: Type.Union([Type.Literal('demonstration'), Type.Literal('ranking'), Type.Literal('ab')]),
      promptIds: Type.Array(Id, { minItems: 1, maxItems: 10000 }),
      modelA: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
      modelB: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    }),
    AddGold: Type.Object({
      prompt: Text,
      responses: Type.Array(Text, { minItems: 2, maxItems: 9 }),
      ranking: Ranking,
    }),
    SetScreening: Type.Object({
      goldIds: Type.Array(Id, { minItems: 1, maxItems: 200 }),
      passThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    }),
    ScreeningAnswers: Type.Object({
      answers: Type.Array(Type.Object({ goldId: Id, ranking: Ranking }), {
        maxItems: 200,
      }),
    }),
    IdParam: Type.Object({ id: Id }),
    JobChartQuery: Type.Object({
      of: Type.Union([Type.Literal('loss'), Type.Literal('reward')], { default: 'loss' }),
    }),
    KindParam: Type.Object({ kind: Type.String({ maxLength: 32 }) }),
    ExportQuery: Type.Object({
      split: Type.Optional(Split),
      include: Type.Optional(Type.String({ pattern: '^(rankings|comparisons)(,(rankings|comparisons))?$' })),
    }),
    /** One body for all task kinds; which fields are required depends on the assignment's kind. */
    Submit: Type.Object(
      {
        completion: Type.Optional(Text),
        ranking: Type.Optional(Ranking),
        likert: Type.Optional(Type.Array(Type.Integer(), { maxItems: 9 })),
        flags: Type.Optional(Type.Object(flagProps, { additionalProperties: false })),
        choice: Type.Optional(Choice),
      },
      { additionalProperties: false },
    ),
    IdempotencyHeaders: Type.Object({ 'idempotency-key': Type.String({ pattern: '^[A-Za-z0-9_.:-]{8,128}$' }) }),
    /** One new user message; the server holds the conversation (a new one when `conversationId` is absent). */
    Chat: Type.Object(
      { conversationId: Type.Optional(Id), content: Type.String({ pattern: '\\S', maxLength: l.maxTextChars }) },
      { additionalProperties: false },
    ),
    ChatCompare: Type.Object({ pairId: Id, choice: Choice }),
    /** A blind A/B eval of two versions: on these held-out prompts, or on every held-out prompt. */
    CreateEval: Type.Object(
      {
        modelA: Type.String({ minLength: 1, maxLength: 128 }),
        modelB: Type.String({ minLength: 1, maxLength: 128 }),
        prompts: Type.Optional(Type.Array(Id, { minItems: 1, maxItems: 10000 })),
        /** Held-out labelers who answer each prompt (2 or more give the eval an agreement figure). */
        labelers: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
      },
      { additionalProperties: false },
    ),
    /** The version the win rates (the paper's Figure 1) are taken against; default: the most compared one. */
    BaselineQuery: Type.Object({ baseline: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) }),
    RegisterModel: Type.Object(
      {
        path: Type.String({ minLength: 1, maxLength: 4096 }),
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
      },
      { additionalProperties: false },
    ),
    /** The config's fields are checked by the trainer's own ConfigSpec (a 422 naming the field), not here. */
    CreateJob: Type.Object(
      {
        kind: Type.Union(['sft', 'rm', 'ppo', 'dpo', 'grpo'].map((k) => Type.Literal(k as JobKind))),
        baseModel: Id,
        rewardModel: Type.Optional(Id),
        config: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        ptx: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
      },
      { additionalProperties: false },
    ),
  };
}

export type Schemas = ReturnType<typeof schemas>;
export type SubmitBody = Static<Schemas['Submit']>;
export type ChatBody = Static<Schemas['Chat']>;
export type SettingsPatch = Static<Schemas['Settings']>;
/** Query strings as the client builds them (limit and offset have defaults on the server). */
export type TaskQueryBody = Partial<Static<Schemas['TaskQuery']>>;
export type SubmissionQueryBody = Partial<Static<Schemas['SubmissionQuery']>>;
