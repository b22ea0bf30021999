/**
 * Failed sign-ins per (account, client address) in a sliding window. Keyed on both so that one attacker cannot lock
 * a labeler out from everywhere, and one address cannot guess many passwords of one account. Kept in memory: the
 * server is one process, and a restart only forgives recent failures.
 */
export interface LoginThrottleOptions {
  /** Failures allowed within the window; the next attempt is refused until the oldest one leaves it. */
  maxFailures: number;
  windowMs: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleOptions = { maxFailures: 5, windowMs: 15 * 60_000 };

// Beyond this many tracked pairs, pairs with no failure left in the window are forgotten.
const PRUNE_ABOVE = 10_000;

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly opts: LoginThrottleOptions,
    private readonly now: () => number,
  ) {}

  /** Milliseconds until this pair may try again; 0 when it may try now. */
  retryAfterMs(username: string, address: string): number {
    const recent = this.recent(this.key(username, address));
    if (recent.length < this.opts.maxFailures) return 0;
    return recent[recent.length - this.opts.maxFailures] + this.opts.windowMs - this.now();
  }

  recordFailure(username: string, address: string): void {
    if (this.failures.size > PRUNE_ABOVE) {
      for (const key of this.failures.keys()) if (this.recent(key).length === 0) this.failures.delete(key);
    }
    const key = this.key(username, address);
    this.failures.set(key, [...this.recent(key), this.now()]);
  }

  /** A successful sign-in forgives the pair's earlier failures. */
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
