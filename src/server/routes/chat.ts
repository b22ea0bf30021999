/** The chat playground: stored conversations, streamed replies and the occasional two-reply comparison. */
import { randomInt } from 'node:crypto';
import { Readable } from 'node:stream';
import { type ChatMessage, chatPrompt, collect, conversationTitle } from '../chat.js';
import { fail, type RouteContext } from '../context.js';

export function chatRoutes(ctx: RouteContext): void {
  const { app, store, S, chatModel, user, idempotent } = ctx;
  const Idem = { headers: S.IdempotencyHeaders };

  app.get('/api/conversations', { config: { auth: 'any' } }, async (req) => ({
    conversations: await store.chat.listConversations(user(req).id),
  }));

  app.get('/api/conversations/:id', { config: { auth: 'any' }, schema: { params: S.IdParam } }, async (req) => ({
    conversation: await store.chat.conversation(req.params.id, user(req).id),
  }));

  app.post('/api/chat', { config: { auth: 'any' }, schema: { body: S.Chat } }, async (req, reply) => {
    const u = user(req);
    const { conversationId, content } = req.body;
    const settings = await store.settings.get();
    const { conversation, n } = await store.tx(async (s) => {
      const id = conversationId ?? (await s.chat.createConversation(u.id, conversationTitle(content)));
      const c = await s.chat.conversation(id, u.id);
      if (c.pendingPair) {
        fail(409, 'choice_pending', `choose between the two replies of chat pair ${c.pendingPair.pairId} first`);
      }
      await s.chat.addMessage(id, 'user', content);
      return { conversation: c, n: await s.chat.countReply(u.id) };
    });
    const messages: ChatMessage[] = [...conversation.messages, { role: 'user', content }];
    // The response closing before it finished means the user stopped the reply (or left): stop sampling.
    const ac = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) ac.abort();
    });
    const line = (o: object) => `${JSON.stringify(o)}\n`;
    async function* body(): AsyncGenerator<string> {
      yield line({ type: 'conversation', id: conversation.id, title: conversation.title });
      if (settings.chatCompareEvery > 0 && n % settings.chatCompareEvery === 0) {
        const seeds = [randomInt(1 << 30), randomInt(1 << 30)];
        const [a, b] = await Promise.all(
          seeds.map((seed) => collect(chatModel.stream(messages, { signal: ac.signal, seed }))),
        );
        if (ac.signal.aborted) return; // the user never saw these replies
        const pair = { prompt: chatPrompt(messages), a, b, model: chatModel.name };
        const pairId = await store.chat.openPair(u.id, conversation.id, pair);
        yield line({ type: 'compare', pairId, a, b });
      } else {
        let text = '';
        try {
          for await (const piece of chatModel.stream(messages, { signal: ac.signal })) {
            text += piece;
            yield line({ type: 'token', text: piece });
          }
        } finally {
          // What the user saw is kept, also when they stopped the reply part way.
          if (text) await store.chat.addMessage(conversation.id, 'assistant', text);
        }
      }
      yield line({ type: 'done', reply: n });
    }
    reply.header('content-type', 'application/x-ndjson; charset=utf-8');
    return reply.send(Readable.from(body()));
  });

  app.post(
    '/api/chat/compare',
    { config: { auth: 'any' }, schema: { body: S.ChatCompare, ...Idem } },
    async (req, reply) =>
      idempotent(req, reply, 'chat-compare', async (s) => {
        await s.chat.choosePair(req.body.pairId, user(req).id, req.body.choice);
        return { ok: true, pairId: req.body.pairId };
      }),
  );
}
