/** Idempotency keys: a retried request (same user, key and body) gets the stored response and stores nothing. */
import { Aggregate } from './aggregate.js';
import { StoreError } from './errors.js';
import type { Store } from './store.js';

export class Idempotency extends Aggregate {
  /**
   * Runs `fn` once per (user, key): a replay with the same body returns the stored response and stores nothing;
   * the same key with a different body is refused. Key and effects commit in one transaction.
   */
  async run<T>(
    userId: number,
    key: string,
    route: string,
    bodyHash: string,
    fn: (s: Store) => Promise<{ status: number; body: T }>,
  ): Promise<{ status: number; body: T; replayed: boolean }> {
    return this.s.tx(async (s) => {
      // The key is claimed before the work: a concurrent request with the same key (on this or another app server)
      // waits on this row until this transaction ends, then replays what it stored or, after a rollback, runs.
      const claimed = await s.db
        .insertInto('idempotency_keys')
        .values({ user_id: userId, key, route, body_hash: bodyHash, status: 0, response: '', created_at: s.now() })
        .onConflict((oc) => oc.columns(['user_id', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
      if (!claimed) {
        const prior = await s.db
          .selectFrom('idempotency_keys')
          .selectAll()
          .where('user_id', '=', userId)
          .where('key', '=', key)
          .executeTakeFirstOrThrow();
        if (prior.route !== route || prior.body_hash !== bodyHash) {
          throw new StoreError('conflict', 'this Idempotency-Key was already used for a different request');
        }
        return { status: prior.status, body: JSON.parse(prior.response) as T, replayed: true };
      }
      const r = await fn(s);
      await s.db
        .updateTable('idempotency_keys')
        .set({ status: r.status, response: JSON.stringify(r.body) })
        .where('user_id', '=', userId)
        .where('key', '=', key)
        .execute();
      return { ...r, replayed: false };
    });
  }
}
