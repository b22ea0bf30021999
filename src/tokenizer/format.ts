// The prompt format every stage must agree on (SFT trains on it, the reward model reads it, PPO samples from it):
// the prompt rendered with the chat template as a user turn with the assistant's generation prompt ("chat"), or
// the prompt text as is ("raw"); the response follows, then EOS (generation stops there and the reward model reads
// its score at that token). "auto" is what the model folder says: the format SFT recorded in its sft_config.json,
// else the chat template when its tokenizer has one, else raw.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChatMessage } from './chat.js';
import type { Tokenizer } from './tokenizer.js';

export const PROMPT_FORMATS = ['auto', 'chat', 'raw'] as const;
export type PromptFormat = (typeof PROMPT_FORMATS)[number];

/** The format a model folder's stages use when asked for `requested` ("auto" resolves; the others stay). */
export function resolvePromptFormat(dir: string, tokenizer: Tokenizer, requested: PromptFormat): 'chat' | 'raw' {
  if (requested === 'chat' && tokenizer.chatTemplate === null)
    throw new Error(
      `${join(dir, 'tokenizer_config.json')}: field "chat_template" is missing, but promptFormat is "chat"; use "raw" or "auto"`,
    );
  if (requested !== 'auto') return requested;
  const recorded = join(dir, 'sft_config.json');
  if (existsSync(recorded)) {
    const f = (JSON.parse(readFileSync(recorded, 'utf8')) as { promptFormat?: unknown }).promptFormat;
    if (f === 'chat' || f === 'raw') return f;
  }
  return tokenizer.chatTemplate ? 'chat' : 'raw';
}

/** Turns prompts and responses into token ids in one format; see the top of this file. */
export class Formatter {
  readonly eosId: number;
  readonly padId: number;
  readonly format: 'chat' | 'raw';

  constructor(
    readonly tokenizer: Tokenizer,
    readonly dir: string,
    format: PromptFormat = 'auto',
  ) {
    if (tokenizer.eosId === null)
      throw new Error(
        `${join(dir, 'tokenizer_config.json')}: field "eos_token" is missing; responses must end with EOS`,
      );
    this.eosId = tokenizer.eosId;
    this.padId = tokenizer.padId ?? tokenizer.eosId;
    this.format = resolvePromptFormat(dir, tokenizer, format);
  }

  /** Prompt ids; `context` is the conversation before the last user turn's answer (system, earlier turns). */
  prompt(prompt: string, context?: readonly ChatMessage[]): number[] {
    const tok = this.tokenizer;
    let ids: number[];
    if (this.format === 'chat') {
      const messages = context ?? [{ role: 'user', content: prompt }];
      ids = tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
    } else {
      if (context) throw new Error('a multi-turn "messages" line needs the chat prompt format');
      ids = tok.encode(prompt);
    }
    // generate() needs at least one prompt token.
    return ids.length > 0 ? ids : [tok.bosId ?? this.eosId];
  }

  /** Response ids, EOS appended. */
  response(text: string): number[] {
    return [...this.tokenizer.encode(text, { addSpecialTokens: false }), this.eosId];
  }

  /** Response text of generated ids: EOS and ids outside the vocabulary dropped. */
  decode(ids: readonly number[]): string {
    const t = this.tokenizer;
    return t.decode(ids.filter((id) => id !== this.eosId && t.idToToken(id) !== null));
  }
}
