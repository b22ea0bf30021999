/** Chat playground history: conversations, their messages, and the two-reply comparisons shown now and then. */
import { sql } from 'kysely';
import { Aggregate, count } from './aggregate.js';
import { StoreError } from './errors.js';
import type { Choice } from './schema.js';

export interface ConversationSummary {
  id: number;
  title: string;
  updatedAt: number;
  messages: number;
}

export interface Conversation {
  id: number;
  title: string;
  updatedAt: number;
  messages: { role: 'user' | 'assistant'; content: string }[];
  /** Two candidate replies shown and not yet chosen between; the conversation continues after the choice. */
  pendingPair: { pairId: number; a: string; b: string } | null;
}

export class Chat extends Aggregate {
  async createConversation(userId: number, title: string): Promise<number> {
    const { id } = await this.db
      .insertInto('conversations')
      .values({ user_id: userId, title, created_at: this.now(), updated_at: this.now() })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  /** The user's conversations, most recently active first. */
  async listConversations(userId: number, limit = 100): Promise<ConversationSummary[]> {
    const rows = await this.db
      .selectFrom('conversations')
      .select((eb) => [
        'conversations.id',
        'conversations.title',
        'conversations.updated_at',
        eb
          .selectFrom('chat_messages')
          .select((e) => e.fn.countAll<number>().as('n'))
          .whereRef('chat_messages.conversation_id', '=', 'conversations.id')
          .as('messages'),
      ])
      .where('conversations.user_id', '=', userId)
      .orderBy('conversations.updated_at', 'desc')
      .orderBy('conversations.id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ id: r.id, title: r.title, updatedAt: r.updated_at, messages: count(r.messages) }));
  }

  /** A conversation of this user with its messages and any comparison still waiting for a choice. */
  async conversation(id: number, userId: number): Promise<Conversation> {
    const c = await this.db.selectFrom('conversations').selectAll().where('id', '=', id).executeTakeFirst();
    // Someone else's conversation is reported as missing, like assignments.
    if (c?.user_id !== userId) throw new StoreError('not_found', `no conversation ${id}`);
    const messages = await this.db
      .selectFrom('chat_messages')
      .select(['role', 'content'])
      .where('conversation_id', '=', id)
      .orderBy('id')
      .execute();
    const pending = await this.db
      .selectFrom('comparisons')
      .select(['id', 'a_text', 'b_text'])
      .where('conversation_id', '=', id)
      .where('choice', 'is', null)
      .limit(sql.lit(1))
      .executeTakeFirst();
    return {
      id,
      title: c.title,
      updatedAt: c.updated_at,
      messages,
      pendingPair: pending ? { pairId: pending.id, a: pending.a_text, b: pending.b_text } : null,
    };
  }

  async addMessage(conversationId: number, role: 'user' | 'assistant', content: string): Promise<number> {
    return this.s.tx(async (s) => {
      const { id } = await s.db
        .insertInto('chat_messages')
        .values({ conversation_id: conversationId, role, content, created_at: s.now() })
        .returning('id')
        .executeTakeFirstOrThrow();
      await s.db.updateTable('conversations').set({ updated_at: s.now() }).where('id', '=', conversationId).execute();
      return id;
    });
  }

  /**
   * Takes back a user's message that got no answer (an empty reply, an error, a message too long for the model), so
   * that the history never holds two user turns in a row; a conversation left with nothing in it goes too.
   */
  async retractMessage(conversationId: number, messageId: number): Promise<void> {
    await this.s.tx(async (s) => {
      await s.db
        .deleteFrom('chat_messages')
        .where('id', '=', messageId)
        .where('conversation_id', '=', conversationId)
        .execute();
      const left = await s.db
        .selectFrom('chat_messages')
        .select('id')
        .where('conversation_id', '=', conversationId)
        .limit(sql.lit(1))
        .executeTakeFirst();
      const pairs = await s.db
        .selectFrom('comparisons')
        .select('id')
        .where('conversation_id', '=', conversationId)
        .limit(sql.lit(1))
        .executeTakeFirst();
      if (!left && !pairs) await s.db.deleteFrom('conversations').where('id', '=', conversationId).execute();
    });
  }

  async openPair(
    userId: number,
    conversationId: number,
    pair: { prompt: string; a: string; b: string; modelA: string; modelB: string },
  ): Promise<number> {
    const { id } = await this.db
      .insertInto('comparisons')
      .values({
        kind: 'chat',
        prompt: pair.prompt,
        a_text: pair.a,
        b_text: pair.b,
        model_a: pair.modelA,
        model_b: pair.modelB,
        choice: null,
        assignment_id: null,
        user_id: userId,
        labeler: null,
        conversation_id: conversationId,
        created_at: this.now(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  /** Stores the choice; the chosen reply (A on a tie) continues the pair's conversation. */
  async choosePair(pairId: number, userId: number, choice: Choice): Promise<void> {
    await this.s.tx(async (s) => {
      const row = await s.db
        .selectFrom('comparisons')
        .select(['id', 'user_id', 'kind', 'a_text', 'b_text', 'conversation_id'])
        .where('id', '=', pairId)
        .executeTakeFirst();
      if (row?.kind !== 'chat' || row.user_id !== userId) throw new StoreError('not_found', `no chat pair ${pairId}`);
      // Conditional, so that of two concurrent choices (two servers) only one is stored and continues the chat.
      const chosen = await s.db
        .updateTable('comparisons')
        .set({ choice })
        .where('id', '=', pairId)
        .where('choice', 'is', null)
        .executeTakeFirst();
      if (Number(chosen.numUpdatedRows) !== 1)
        throw new StoreError('conflict', `chat pair ${pairId} was already chosen`);
      if (row.conversation_id !== null) {
        await s.chat.addMessage(row.conversation_id, 'assistant', choice === 'b' ? row.b_text : row.a_text);
      }
    });
  }

  /** Counts a chat reply and returns the new count (for "every Nth reply"). */
  async countReply(userId: number): Promise<number> {
    return this.s.tx(async (s) => {
      await s.db
        .updateTable('users')
        .set((eb) => ({ chat_replies: eb('chat_replies', '+', 1) }))
        .where('id', '=', userId)
        .execute();
      const r = await s.db
        .selectFrom('users')
        .select('chat_replies')
        .where('id', '=', userId)
        .executeTakeFirstOrThrow();
      return r.chat_replies;
    });
  }
}
