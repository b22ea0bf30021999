/** Sign-in sessions: the cookie token's hash, its CSRF token and a sliding expiry. */
import { Aggregate } from './aggregate.js';
import { prepared } from './prepared.js';
import { SETTINGS_REVISION } from './settings.js';
import { type PublicUser, publicUser, usersWithGroup } from './users.js';

export interface SessionWithUser {
  id: string;
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
  user: PublicUser;
  /** The settings' revision as this request found it (see `SettingsStore.get`). */
  settingsRevision: string | null;
}

// One query per request: the session with its user and group, and the settings' revision.
const sessionWithUser = prepared((db, v: { id: string }) =>
  usersWithGroup(db)
    .innerJoin('sessions', 'sessions.user_id', 'users.id')
    .select([
      'sessions.id as session_id',
      'sessions.csrf_token',
      'sessions.created_at as session_created_at',
      'sessions.expires_at',
    ])
    .select((eb) =>
      eb.selectFrom('settings').select('value').where('key', '=', SETTINGS_REVISION).as('settings_revision'),
    )
    .where('sessions.id', '=', v.id),
);

export class Sessions extends Aggregate {
  /** `expiresAt` is when the session runs out unless it is extended (see `extend`). */
  async create(s: { id: string; userId: number; csrfToken: string; expiresAt: number }): Promise<void> {
    await this.db
      .insertInto('sessions')
      .values({
        id: s.id,
        user_id: s.userId,
        csrf_token: s.csrfToken,
        created_at: this.now(),
        expires_at: s.expiresAt,
      })
      .execute();
  }

  /** The session and its user; `expired` when it exists but has run out (it is then deleted). */
  async get(id: string): Promise<SessionWithUser | 'expired' | undefined> {
    const row = await sessionWithUser(this.s, { id });
    if (!row) return undefined;
    if (row.expires_at <= this.now()) {
      await this.delete(id);
      return 'expired';
    }
    const user = publicUser(row);
    if (user.disabled) return undefined;
    return {
      id: row.session_id,
      csrfToken: row.csrf_token,
      createdAt: row.session_created_at,
      expiresAt: row.expires_at,
      user,
      settingsRevision: row.settings_revision,
    };
  }

  /** Moves a live session's expiry later (never earlier). */
  async extend(id: string, expiresAt: number): Promise<void> {
    await this.db
      .updateTable('sessions')
      .set({ expires_at: expiresAt })
      .where('id', '=', id)
      .where('expires_at', '<', expiresAt)
      .execute();
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id', '=', id).execute();
  }

  async deleteExpired(): Promise<number> {
    const r = await this.db.deleteFrom('sessions').where('expires_at', '<=', this.now()).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
