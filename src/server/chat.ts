/** The model behind the chat playground. A sampling-backed implementation plugs in later. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatStreamOptions {
  signal?: AbortSignal;
  seed?: number;
  /** Called before the first token when the oldest messages were left out to fit the model's context. */
  onTruncate?: (droppedMessages: number) => void;
}

export interface ChatModel {
  readonly name: string;
  /**
   * Streams the assistant reply to the conversation, token by token. A conversation longer than the model's context
   * loses its oldest turns (see `onTruncate`); one whose last message alone does not fit rejects with
   * `ContextTooLongError` before any token.
   */
  stream(messages: readonly ChatMessage[], opts: ChatStreamOptions): AsyncIterable<string>;
}

/** The newest message alone is longer than the model can read. */
export class ContextTooLongError extends Error {
  override name = 'ContextTooLongError';
}

/** Test model: echoes the last user message word by word (with a variant tag when a seed is given). */
export class EchoChatModel implements ChatModel {
  readonly name = 'echo';
  async *stream(messages: readonly ChatMessage[], opts: ChatStreamOptions): AsyncIterable<string> {
    const last = [...messages].reverse().find((m) => m.role === 'user');
    const words = (last?.content ?? '').split(/(\s+)/).filter((w) => w.length > 0);
    if (opts.seed !== undefined) words.unshift(`[${opts.seed}] `);
    for (const w of words) {
      if (opts.signal?.aborted) return;
      yield w;
    }
  }
}

export async function collect(stream: AsyncIterable<string>): Promise<string> {
  let s = '';
  for await (const t of stream) s += t;
  return s;
}

/** The prompt text stored with a chat comparison: the last user turn, or the whole transcript when multi-turn. */
export function chatPrompt(messages: readonly ChatMessage[]): string {
  if (messages.length === 1) return messages[0].content;
  return messages.map((m) => `${m.role}: ${m.content}`).join('\n');
}

/** A conversation's title: the start of its first message, on one line. */
export function conversationTitle(firstMessage: string, maxChars = 60): string {
  const line = firstMessage.replace(/\s+/g, ' ').trim();
  return line.length <= maxChars ? line : `${line.slice(0, maxChars - 1).trimEnd()}…`;
}
