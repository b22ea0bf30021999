/** Errors that the HTTP layer maps to 4xx responses. */
export type StoreErrorCode = 'not_found' | 'conflict' | 'invalid' | 'forbidden' | 'expired';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}
