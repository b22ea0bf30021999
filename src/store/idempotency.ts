/** Idempotency keys: a retried request (same user, key and body) gets the stored response and stores nothing. */
import { Aggregate } from './aggregate.js';
import { StoreError } from './errors.js';
import type { Store } from './store.js';

export class Idempotency extends Aggregate {
  /**
   * Runs `fn` once per (user, key): a replay with the same body returns the stored response and stores nothing;
   * the same key with a different body is refused. Key and effects commit in one transaction, and the primary key
   * keeps a concurrent duplicate from committing.
   */
  async run<T>(
    userId: number,
    key: string,
    route: string,
    bodyHash: string,
    fn: (s: Store) => Promise<{ status: number; body: T }>,
  ): Promise<{ status: number; body: T; replayed: boolean }> {
    return this.s.tx(async (s) => {
      const prior = await s.db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('user_id', '=', userId)
        .where('key', '=', key)
        .executeTakeFirst();
      if (prior) {
        if (prior.route !== route || prior.body_hash !== bodyHash) {
          throw new StoreError('conflict', 'this Idempotency-Key was already used for a different request');
        }
        return { status: prior.status, body: JSON.parse(prior.response) as T, replayed: true };
      }
      const r = await fn(s);
      await s.db
        .insertInto('idempotency_keys')
        .values({
          user_id: userId,
          key,
          route,
          body_hash: bodyHash,
          status: r.status,
          response: JSON.stringify(r.body),
          created_at: s.now(),
        })
        .execute();
      return { ...r, replayed: false };
    });
  }
}
