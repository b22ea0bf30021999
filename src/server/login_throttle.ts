/**
 * Failed sign-ins per (account, client address) in a sliding window. Keyed on both so that one attacker cannot lock
 * a labeler out from everywhere, and one address cannot guess many passwords of one account. The failures are kept
 * in the database (store.loginFailures), so every app server sharing it enforces the same limit.
 */
import type { Store } from '../store/index.js';

export interface LoginThrottleOptions {
  /** Failures allowed within the window; the next attempt is refused until the oldest one leaves it. */
  maxFailures: number;
  windowMs: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleOptions = { maxFailures: 5, windowMs: 15 * 60_000 };

export class LoginThrottle {
  constructor(
    private readonly store: Store,
    private readonly opts: LoginThrottleOptions,
    private readonly now: () => number,
  ) {}

  /** Milliseconds until this pair may try again; 0 when it may try now. */
  async retryAfterMs(username: string, address: string): Promise<number> {
    const recent = await this.store.loginFailures.since(username, address, this.now() - this.opts.windowMs);
    if (recent.length < this.opts.maxFailures) return 0;
    return recent[recent.length - this.opts.maxFailures] + this.opts.windowMs - this.now();
  }

  async recordFailure(username: string, address: string): Promise<void> {
    const now = this.now();
    await this.store.loginFailures.record(username, address, now, now - this.opts.windowMs);
  }

  /** A successful sign-in forgives the pair's earlier failures. */
  async recordSuccess(username: string, address: string): Promise<void> {
    await this.store.loginFailures.clear(username, address);
  }
}
