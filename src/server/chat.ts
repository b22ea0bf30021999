/** The model behind the chat playground. A sampling-backed implementation plugs in later. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatModel {
  readonly name: string;
  /** Streams the assistant reply to the conversation, token by token. */
  stream(messages: readonly ChatMessage[], opts: { signal?: AbortSignal; seed?: number }): AsyncIterable<string>;
}

/** Test model: echoes the last user message word by word (with a variant tag when a seed is given). */
export class EchoChatModel implements ChatModel {
  readonly name = 'echo';
  async *stream(
    messages: readonly ChatMessage[],
    opts: { signal?: AbortSignal; seed?: number },
  ): AsyncIterable<string> {
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
