/** The chat playground: stored conversations, streamed replies and the occasional two-reply comparison. */
import { randomInt } from 'node:crypto';
import { Readable } from 'node:stream';
import { type ChatMessage, ContextTooLongError, chatPrompt, collect, conversationTitle } from '../chat.js';
import { fail, type RouteContext } from '../context.js';
import { responses as R } from '../responses.js';

export function chatRoutes(ctx: RouteContext): void {
  const { app, store, S, chatModels, random, user, settings: settingsOf, idempotent } = ctx;
  const Idem = { headers: S.IdempotencyHeaders };

  app.get(
    '/api/conversations',
    { config: { auth: 'any' }, schema: { response: { 200: R.Conversations } } },
    async (req) => ({
      conversations: await store.chat.listConversations(user(req).id),
    }),
  );

  app.get(
    '/api/conversations/:id',
    { config: { auth: 'any' }, schema: { params: S.IdParam, response: { 200: R.Conversation } } },
    async (req) => ({
      conversation: await store.chat.conversation(req.params.id, user(req).id),
    }),
  );

  app.post('/api/chat', { config: { auth: 'any' }, schema: { body: S.Chat } }, async (req, reply) => {
    const u = user(req);
    const { conversationId, content } = req.body;
    const settings = await settingsOf(req);
    const { conversation, n, messageId } = await store.tx(async (s) => {
      const id = conversationId ?? (await s.chat.createConversation(u.id, conversationTitle(content)));
      const c = await s.chat.conversation(id, u.id);
      if (c.pendingPair) {
        fail(409, 'choice_pending', `choose between the two replies of chat pair ${c.pendingPair.pairId} first`);
      }
      const messageId = await s.chat.addMessage(id, 'user', content);
      return { conversation: c, n: await s.chat.countReply(u.id), messageId };
    });
    // The user's turn stays only when an answer follows it, so the history never holds two user turns in a row.
    const retract = () => store.chat.retractMessage(conversation.id, messageId);
    const messages: ChatMessage[] = [...conversation.messages, { role: 'user', content }];
    // The response closing before it finished means the user stopped the reply (or left): stop sampling.
    const ac = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) ac.abort();
    });
    let droppedMessages = 0;
    const opts = { signal: ac.signal, onTruncate: (d: number) => (droppedMessages = d) };
    const compare = settings.chatCompareEvery > 0 && n % settings.chatCompareEvery === 0;
    // The admin's chat versions: a reply from one of them; a comparison between two of them when there are two.
    const pool = chatModels(settings.chatModels);
    const pick = () => pool.splice(pool.length > 1 ? Math.floor(random() * pool.length) : 0, 1)[0];
    const chatModel = pick();
    const otherModel = pool.length > 0 ? pick() : chatModel;
    // Sampling starts before the response, so that a message the model cannot read is a clean 422, not a cut stream.
    let replies: string[] = [];
    let tokens: AsyncIterator<string> | null = null;
    let first: IteratorResult<string> = { done: true, value: undefined };
    try {
      if (compare) {
        const seeds = [randomInt(1 << 30), randomInt(1 << 30)];
        const models = [chatModel, otherModel];
        replies = await Promise.all(seeds.map((seed, i) => collect(models[i].stream(messages, { ...opts, seed }))));
      } else {
        tokens = chatModel.stream(messages, opts)[Symbol.asyncIterator]();
        first = await tokens.next();
      }
    } catch (e) {
      await retract();
      if (e instanceof ContextTooLongError) fail(422, 'context_too_long', e.message);
      throw e;
    }
    const line = (o: object) => `${JSON.stringify(o)}\n`;
    const emptyReply = line({
      type: 'error',
      error: 'empty_reply',
      message: 'the model gave an empty reply; nothing was saved — send your message again',
    });
    async function* body(): AsyncGenerator<string> {
      yield line({ type: 'conversation', id: conversation.id, title: conversation.title });
      if (droppedMessages > 0) {
        yield line({
          type: 'context',
          droppedMessages,
          message: `the model sees only the latest messages: the first ${droppedMessages} were left out to fit its context`,
        });
      }
      if (compare) {
        if (ac.signal.aborted) return retract(); // the user never saw these replies
        const [a, b] = replies;
        if (a.trim() && b.trim() && a.trim() !== b.trim()) {
          const pair = { prompt: chatPrompt(messages), a, b, modelA: chatModel.name, modelB: otherModel.name };
          const pairId = await store.chat.openPair(u.id, conversation.id, pair);
          yield line({ type: 'compare', pairId, a, b });
        } else {
          // Nothing to compare (the same text twice, or one empty): the reply that says something is the answer.
          const text = a.trim() ? a : b;
          if (!text.trim()) {
            await retract();
            yield emptyReply;
            return;
          }
          await store.chat.addMessage(conversation.id, 'assistant', text);
          yield line({ type: 'token', text });
        }
      } else {
        let text = '';
        try {
          for (let r = first; !r.done; r = await tokens!.next()) {
            text += r.value;
            yield line({ type: 'token', text: r.value });
          }
        } catch (e) {
          req.log.error(e);
          yield line({ type: 'error', error: 'model_error', message: `the model failed: ${(e as Error).message}` });
        } finally {
          // Stopped part way (the client left): end the model's stream too, so that sampling stops.
          await tokens!.return?.();
          // What the user saw is kept, also when they stopped the reply part way; an empty reply is not.
          if (text.trim()) await store.chat.addMessage(conversation.id, 'assistant', text);
          else await retract();
        }
        if (!text.trim()) {
          yield emptyReply;
          return;
        }
      }
      yield line({ type: 'done', reply: n });
    }
    reply.header('content-type', 'application/x-ndjson; charset=utf-8');
    return reply.send(Readable.from(body()));
  });

  app.post(
    '/api/chat/compare',
    { config: { auth: 'any' }, schema: { body: S.ChatCompare, ...Idem, response: { 200: R.ChatChoice } } },
    async (req, reply) =>
      idempotent(req, reply, 'chat-compare', async (s) => {
        await s.chat.choosePair(req.body.pairId, user(req).id, req.body.choice);
        return { ok: true, pairId: req.body.pairId };
      }),
  );
}
