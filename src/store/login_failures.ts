/**
 * Failed sign-ins per (account, client address), in the database so that every app server sharing it counts the
 * same failures; the server's LoginThrottle decides what they mean.
 */
import { Aggregate } from './aggregate.js';

export class LoginFailures extends Aggregate {
  /** Times of this pair's failures after `since`, oldest first. */
  async since(username: string, address: string, since: number): Promise<number[]> {
    const rows = await this.db
      .selectFrom('login_failures')
      .select('at')
      .where('username', '=', username)
      .where('address', '=', address)
      .where('at', '>', since)
      .orderBy('at')
      .execute();
    return rows.map((r) => r.at);
  }

  /**
   * Records a failure at `at`, once under each of `usernames` (the throttle also counts one per address), and
   * forgets everyone's failures at or before `forgetBefore` (out of the window).
   */
  async record(usernames: string[], address: string, at: number, forgetBefore: number): Promise<void> {
    await this.s.tx(async (s) => {
      await s.db.deleteFrom('login_failures').where('at', '<=', forgetBefore).execute();
      await s.db
        .insertInto('login_failures')
        .values(usernames.map((username) => ({ username, address, at })))
        .execute();
    });
  }

  /** A successful sign-in forgives the pair's earlier failures. */
  async clear(username: string, address: string): Promise<void> {
    await this.db
      .deleteFrom('login_failures')
      .where('username', '=', username)
      .where('address', '=', address)
      .execute();
  }
}
