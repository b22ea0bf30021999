/**
 * A tokenizer file that cannot be used: the message starts with the file, then the field when one is at fault,
 * e.g. `tokenizer.json: field "model.type" is "WordPiece"; only byte-level BPE is supported`.
 */
export class TokenizerFileError extends Error {
  constructor(
    readonly file: string,
    readonly field: string | null,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(field === null ? `${file}: ${detail}` : `${file}: field "${field}" ${detail}`, options);
    this.name = 'TokenizerFileError';
  }
}

/** A short printable form of any JSON value for error messages. */
export function show(value: unknown): string {
  if (value === undefined) return 'missing';
  const s = JSON.stringify(value);
  const text = s === undefined ? String(value) : s;
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
