/**
 * Failed sign-ins in a sliding window, counted per (account, client address) and per address across accounts.
 * The pair limit keeps one address from guessing many passwords of one account without letting an attacker lock a
 * labeler out from everywhere; the address limit keeps one address from trying a few passwords on many accounts.
 * Behind a reverse proxy the client address is only known with `trustProxy`. The failures are kept in the database
 * (store.loginFailures), so every app server sharing it enforces the same limits.
 */
import type { Store } from '../store/index.js';

export interface LoginThrottleOptions {
  /** Failures allowed per account and address within the window; the next attempt waits for the oldest to leave. */
  maxFailures: number;
  /** Failures allowed per address, whatever the account (default 4 × maxFailures). */
  maxFailuresPerAddress?: number;
  windowMs: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleOptions = {
  maxFailures: 5,
  maxFailuresPerAddress: 20,
  windowMs: 15 * 60_000,
};

// The empty username stands for the address as a whole (usernames are never empty).
const ANY_ACCOUNT = '';

export class LoginThrottle {
  constructor(
    private readonly store: Store,
    private readonly opts: LoginThrottleOptions,
    private readonly now: () => number,
  ) {}

  /** Milliseconds until this account may be tried from this address, and which limit holds it; 0 when it may now. */
  async retryAfter(username: string, address: string): Promise<{ ms: number; limit: 'account' | 'address' }> {
    const perAddress = this.opts.maxFailuresPerAddress ?? 4 * this.opts.maxFailures;
    const address_ = await this.wait(ANY_ACCOUNT, address, perAddress);
    const pair = await this.wait(username, address, this.opts.maxFailures);
    return address_ > pair ? { ms: address_, limit: 'address' } : { ms: pair, limit: 'account' };
  }

  private async wait(username: string, address: string, max: number): Promise<number> {
    const recent = await this.store.loginFailures.since(username, address, this.now() - this.opts.windowMs);
    if (recent.length < max) return 0;
    return recent[recent.length - max] + this.opts.windowMs - this.now();
  }

  async recordFailure(username: string, address: string): Promise<void> {
    const now = this.now();
    await this.store.loginFailures.record([username, ANY_ACCOUNT], address, now, now - this.opts.windowMs);
  }

  /** A successful sign-in forgives the pair's earlier failures (not the address's: one known account must not reset it). */
  async recordSuccess(username: string, address: string): Promise<void> {
    await this.store.loginFailures.clear(username, address);
  }
}
