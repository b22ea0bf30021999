// Chat templates: Jinja strings from tokenizer_config.json `chat_template`, rendered with @huggingface/jinja.

import { Template } from '@huggingface/jinja';
import { TokenizerFileError } from './errors.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplateOptions {
  /** End with the opening of an assistant turn, so that a model continues as the assistant. Default false. */
  addGenerationPrompt?: boolean;
  /** Roles accepted in `messages`; default KNOWN_ROLES. */
  roles?: readonly string[];
  /** Extra variables for the template (e.g. `tools`, `date_string`). */
  extra?: Record<string, unknown>;
}

/** Roles accepted by applyChatTemplate unless the caller passes its own list. */
export const KNOWN_ROLES: readonly string[] = ['system', 'user', 'assistant', 'tool'];

/** Role markers of the default template; trainBpe registers them as special tokens with `chatTokens: true`. */
export const CHAT_TOKENS = {
  system: '<|system|>',
  user: '<|user|>',
  assistant: '<|assistant|>',
  end: '<|end|>',
} as const;

/**
 * The template for models we pretrain ourselves:
 * `<|system|>\n...<|end|>\n<|user|>\n...<|end|>\n<|assistant|>\n...<|end|>\n`, then `<|assistant|>\n` when a
 * generation prompt is asked for. An unknown role raises an exception inside the template.
 */
export const DEFAULT_CHAT_TEMPLATE =
  '{%- for message in messages -%}' +
  "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}" +
  "{{- raise_exception('unknown role \"' + message['role'] + '\"; the default template knows system, user, assistant') -}}" +
  '{%- endif -%}' +
  "{{- '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' -}}" +
  '{%- endfor -%}' +
  "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}";

/** A parsed chat template that remembers which file (and field) it came from, for error messages. */
export class ChatTemplate {
  readonly source: string;
  readonly #template: Template;

  /** Parses `source`; a syntax error becomes a TokenizerFileError naming `file` and `field`. */
  constructor(
    source: string,
    readonly file = 'tokenizer_config.json',
    readonly field: string | null = 'chat_template',
  ) {
    this.source = source;
    try {
      this.#template = new Template(source);
    } catch (e) {
      throw new TokenizerFileError(file, field, `is not a valid Jinja template: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Renders `messages`; `specialTokens` supplies `bos_token`, `eos_token`, ... to the template.
   * Throws a TokenizerFileError on a malformed message, a role outside `options.roles`, or any template error.
   */
  render(
    messages: readonly ChatMessage[],
    options: ChatTemplateOptions = {},
    specialTokens: Record<string, string | null> = {},
  ): string {
    const roles = options.roles ?? KNOWN_ROLES;
    if (!Array.isArray(messages)) throw new TypeError('applyChatTemplate: messages must be an array');
    messages.forEach((m, i) => {
      if (m === null || typeof m !== 'object' || typeof m.role !== 'string' || typeof m.content !== 'string')
        throw new TypeError(`applyChatTemplate: messages[${i}] must be {role: string, content: string}`);
      if (!roles.includes(m.role))
        throw new TokenizerFileError(
          this.file,
          this.field,
          `cannot render messages[${i}]: unknown role "${m.role}" (known: ${roles.join(', ')})`,
        );
    });
    const context: Record<string, unknown> = {
      ...specialTokens,
      ...options.extra,
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: options.addGenerationPrompt ?? false,
    };
    try {
      return this.#template.render(context);
    } catch (e) {
      throw new TokenizerFileError(this.file, this.field, `failed to render: ${(e as Error).message}`, { cause: e });
    }
  }
}
