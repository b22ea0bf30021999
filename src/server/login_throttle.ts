/**
 * Failed sign-ins in a sliding window, counted per (account, client address) and per address across accounts.
 * The pair limit keeps one address from guessing many passwords of one account without letting an attacker lock a
 * labeler out from everywhere; the address limit keeps one address from trying a few passwords on many accounts.
 * Behind a reverse proxy the client address is only known with `trustProxy`. Kept in memory: the server is one
 * process, and a restart only forgives recent failures.
 */
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

// Beyond this many tracked pairs, pairs with no failure left in the window are forgotten.
const PRUNE_ABOVE = 10_000;

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly opts: LoginThrottleOptions,
    private readonly now: () => number,
  ) {}

  /** Milliseconds until this account may be tried from this address, and which limit holds it; 0 when it may now. */
  retryAfter(username: string, address: string): { ms: number; limit: 'account' | 'address' } {
    const perAddress = this.opts.maxFailuresPerAddress ?? 4 * this.opts.maxFailures;
    const address_ = this.wait(this.key('', address), perAddress);
    const pair = this.wait(this.key(username, address), this.opts.maxFailures);
    return address_ > pair ? { ms: address_, limit: 'address' } : { ms: pair, limit: 'account' };
  }

  private wait(key: string, max: number): number {
    const recent = this.recent(key);
    if (recent.length < max) return 0;
    return recent[recent.length - max] + this.opts.windowMs - this.now();
  }

  recordFailure(username: string, address: string): void {
    if (this.failures.size > PRUNE_ABOVE) {
      for (const key of this.failures.keys()) if (this.recent(key).length === 0) this.failures.delete(key);
    }
    // The empty username stands for the address as a whole (usernames are never empty).
    for (const key of [this.key(username, address), this.key('', address)]) {
      this.failures.set(key, [...this.recent(key), this.now()]);
    }
  }

  /** A successful sign-in forgives the pair's earlier failures (not the address's: one known account must not reset it). */
  recordSuccess(username: string, address: string): void {
    this.failures.delete(this.key(username, address));
  }

  private key(username: string, address: string): string {
    return `${username}\n${address}`;
  }

  private recent(key: string): number[] {
    const since = this.now() - this.opts.windowMs;
    return (this.failures.get(key) ?? []).filter((t) => t > since);
  }
}
