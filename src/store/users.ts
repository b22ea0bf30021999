/** Users and labeler groups. */
import type { Kysely } from 'kysely';
import { Aggregate, count } from './aggregate.js';
import { StoreError } from './errors.js';
import type { Database, Role, Split, User } from './schema.js';

export interface PublicUser {
  id: number;
  username: string;
  role: Role;
  group: string | null;
  split: Split | null;
  screeningPassed: boolean;
  disabled: boolean;
}

export interface Group {
  id: number;
  name: string;
  split: Split;
}

export interface UserRow {
  id: number;
  username: string;
  role: Role;
  screening_passed: number;
  disabled: number;
  group: string | null;
  split: Split | null;
}

export function publicUser(r: UserRow): PublicUser {
  return {
    id: r.id,
    username: r.username,
    role: r.role,
    group: r.group,
    split: r.split,
    screeningPassed: r.screening_passed === 1,
    disabled: r.disabled === 1,
  };
}

/** Users with their group: the one query behind every `PublicUser` (sessions join it too). */
export function usersWithGroup(db: Kysely<Database>) {
  return db
    .selectFrom('users')
    .leftJoin('groups', 'groups.id', 'users.group_id')
    .select([
      'users.id',
      'users.username',
      'users.role',
      'users.screening_passed',
      'users.disabled',
      'groups.name as group',
      'groups.split as split',
    ]);
}

export class Users extends Aggregate {
  async create(u: { username: string; passwordHash: string; role: Role; group?: string }): Promise<PublicUser> {
    return this.s.tx(async (s) => {
      let groupId: number | null = null;
      if (u.role === 'labeler') {
        const g = await s.db
          .selectFrom('groups')
          .select('id')
          .where('name', '=', u.group ?? 'training')
          .executeTakeFirst();
        if (!g) throw new StoreError('invalid', `unknown group "${u.group}"`);
        groupId = g.id;
      }
      const exists = await s.db.selectFrom('users').select('id').where('username', '=', u.username).executeTakeFirst();
      if (exists) throw new StoreError('conflict', `user "${u.username}" already exists`);
      const { id } = await s.db
        .insertInto('users')
        .values({
          username: u.username,
          password_hash: u.passwordHash,
          role: u.role,
          group_id: groupId,
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return (await s.users.get(id))!;
    });
  }

  async get(id: number): Promise<PublicUser | undefined> {
    const r = await usersWithGroup(this.db).where('users.id', '=', id).executeTakeFirst();
    return r && publicUser(r);
  }

  async forLogin(username: string): Promise<(User & { publicUser: PublicUser }) | undefined> {
    const u = await this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    if (!u) return undefined;
    return { ...u, publicUser: (await this.get(u.id))! };
  }

  async list(): Promise<PublicUser[]> {
    return (await usersWithGroup(this.db).orderBy('users.id').execute()).map(publicUser);
  }

  /**
   * Changes a user. Disabling or a new password ends the user's sessions (but `keepSession`, the caller's own, when
   * admins change their own password). The last active admin cannot be disabled: nobody could sign in to undo it.
   */
  async update(
    id: number,
    patch: { group?: string; screeningPassed?: boolean; disabled?: boolean; passwordHash?: string },
    keepSession?: string,
  ): Promise<PublicUser> {
    return this.s.tx(async (s) => {
      const user = await s.users.get(id);
      if (!user) throw new StoreError('not_found', `no user ${id}`);
      if (patch.disabled && user.role === 'admin' && !user.disabled && (await s.users.activeAdmins()) <= 1) {
        throw new StoreError('conflict', `"${user.username}" is the last active admin and cannot be disabled`);
      }
      const values: Partial<{ group_id: number; screening_passed: number; disabled: number; password_hash: string }> =
        {};
      if (patch.group !== undefined) {
        if (user.role !== 'labeler') throw new StoreError('invalid', 'only labelers belong to a group');
        const g = await s.db.selectFrom('groups').select('id').where('name', '=', patch.group).executeTakeFirst();
        if (!g) throw new StoreError('invalid', `unknown group "${patch.group}"`);
        values.group_id = g.id;
      }
      if (patch.screeningPassed !== undefined) values.screening_passed = patch.screeningPassed ? 1 : 0;
      if (patch.disabled !== undefined) values.disabled = patch.disabled ? 1 : 0;
      if (patch.passwordHash !== undefined) values.password_hash = patch.passwordHash;
      if (Object.keys(values).length > 0) await s.db.updateTable('users').set(values).where('id', '=', id).execute();
      if (patch.disabled || patch.passwordHash !== undefined) {
        let ended = s.db.deleteFrom('sessions').where('user_id', '=', id);
        if (keepSession && !patch.disabled) ended = ended.where('id', '!=', keepSession);
        await ended.execute();
      }
      return (await s.users.get(id))!;
    });
  }

  async activeAdmins(): Promise<number> {
    const { n } = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('role', '=', 'admin')
      .where('disabled', '=', 0)
      .executeTakeFirstOrThrow();
    return count(n);
  }

  /**
   * Start-up recovery (`serve --admin-password`): the named admin gets this password and is enabled, and every
   * session it had ends; created when missing. Refuses to turn a labeler's account into an admin.
   */
  async resetAdmin(username: string, passwordHash: string): Promise<PublicUser> {
    return this.s.tx(async (s) => {
      const u = await s.users.forLogin(username);
      if (!u) return s.users.create({ username, passwordHash, role: 'admin' });
      if (u.role !== 'admin') {
        throw new StoreError('conflict', `"${username}" is a labeler, not an admin: choose another --admin-user`);
      }
      await s.db
        .updateTable('users')
        .set({ password_hash: passwordHash, disabled: 0 })
        .where('id', '=', u.id)
        .execute();
      await s.db.deleteFrom('sessions').where('user_id', '=', u.id).execute();
      return (await s.users.get(u.id))!;
    });
  }

  async listGroups(): Promise<Group[]> {
    return this.db.selectFrom('groups').selectAll().orderBy('id').execute();
  }

  async createGroup(name: string, split: Split): Promise<Group> {
    return this.s.tx(async (s) => {
      const exists = await s.db.selectFrom('groups').select('id').where('name', '=', name).executeTakeFirst();
      if (exists) throw new StoreError('conflict', `group "${name}" already exists`);
      const { id } = await s.db.insertInto('groups').values({ name, split }).returning('id').executeTakeFirstOrThrow();
      return { id, name, split };
    });
  }
}
