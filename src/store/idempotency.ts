/** Idempotency keys: a retried request (same user, key and body) gets the stored response and stores nothing. */
import { Aggregate } from './aggregate.js';
import { StoreError } from './errors.js';
import { prepared } from './prepared.js';
import type { Store } from './store.js';

const storeKey = prepared(
  (
    db,
    v: { userId: number; key: string; route: string; bodyHash: string; status: number; response: string; now: number },
  ) =>
    db
      .insertInto('idempotency_keys')
      .values({
        user_id: v.userId,
        key: v.key,
        route: v.route,
        body_hash: v.bodyHash,
        status: v.status,
        response: v.response,
        created_at: v.now,
      })
      .onConflict((oc) => oc.columns(['user_id', 'key']).doNothing())
      .returning('key'),
);

export class Idempotency extends Aggregate {
  /**
   * Runs `fn` once per (user, key): a replay with the same body returns the stored response and stores nothing;
   * the same key with a different body is refused. Key and effects commit in one transaction.
   *
   * The key is written after the work, with its response, in one statement (a round-trip fewer than claiming it
   * first). Of two requests with one key at once, on this or another app server, the second either fails on what the
   * first changed (a submitted assignment) or waits on the first's key; either way it rolls back and replays.
   */
  async run<T>(
    userId: number,
    key: string,
    route: string,
    bodyHash: string,
    fn: (s: Store) => Promise<{ status: number; body: T }>,
  ): Promise<{ status: number; body: T; replayed: boolean }> {
    try {
      return await this.s.tx(async (s) => {
        const r = await fn(s);
        const stored = await storeKey(s, {
          userId,
          key,
          route,
          bodyHash,
          status: r.status,
          response: JSON.stringify(r.body),
          now: s.now(),
        });
        if (!stored) throw new KeyTaken();
        return { ...r, replayed: false };
      });
    } catch (err) {
      // Looked up only now, so a first request pays nothing for it; a failed lookup leaves the original error.
      const prior = await this.db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('user_id', '=', userId)
        .where('key', '=', key)
        .executeTakeFirst()
        .catch(() => undefined);
      if (!prior) throw err;
      if (prior.route !== route || prior.body_hash !== bodyHash) {
        throw new StoreError('conflict', 'this Idempotency-Key was already used for a different request');
      }
      return { status: prior.status, body: JSON.parse(prior.response) as T, replayed: true };
    }
  }
}

/** Another request stored this key first: this one's work is rolled back and the stored response replayed. */
class KeyTaken extends Error {}
