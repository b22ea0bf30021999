// Printable increments of a growing token sequence, for streaming output.
import type { Tokenizer } from './tokenizer.js';

/**
 * Turns the growing token sequence into printable increments: the text of all ids so far is decoded and only what
 * is new is returned. A character whose UTF-8 bytes are split across tokens decodes as U+FFFD until its last byte
 * arrives, so such a tail is held back.
 */
export function textStreamer(tokenizer: Tokenizer): { push(id: number): string; flush(): string } {
  const ids: number[] = [];
  let printed = '';
  const delta = (final: boolean): string => {
    const text = tokenizer.decode(ids, { skipSpecialTokens: true });
    if (!final && text.endsWith('\uFFFD')) return '';
    const add = text.startsWith(printed) ? text.slice(printed.length) : '';
    printed = text;
    return add;
  };
  return {
    push(id: number): string {
      ids.push(id);
      return delta(false);
    },
    flush: () => delta(true),
  };
}
