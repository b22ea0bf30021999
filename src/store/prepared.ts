/**
 * Queries built and compiled once per dialect, then run with each call's values. Kysely builds and compiles every
 * query anew, walking its whole tree each time; for the few statements behind every labeled item that was 21 % of an
 * app server's CPU samples on `bench:server` (one server, two labelers), more than any other library's.
 */
import type { Compilable, CompiledQuery, Kysely } from 'kysely';
import type { DialectName } from './migrations.js';
import type { Database } from './schema.js';
import type { Store } from './store.js';

/** Where a call's value goes: Kysely takes it for a value and puts it among the compiled query's parameters. */
class Slot {
  constructor(readonly name: string) {}

  // Arithmetic or a comparison on a stand-in would bake one wrong constant into every later call.
  [Symbol.toPrimitive](): never {
    throw new Error(`prepared query: "${this.name}" is a stand-in for a value; compute with it outside the query`);
  }
}

interface Template {
  sql: CompiledQuery<unknown>;
  /** Per parameter, the name of the call's value that fills it; undefined for a constant of the query. */
  slots: (string | undefined)[];
}

/** The values a prepared query takes: what the drivers bind as they are. */
type Values = Record<string, string | number | null>;

/**
 * `build` gets stand-ins for the values, so everything that varies from call to call must come through `v` (the
 * time too), and `build` may use them only as values: never branch on them or compute with them. Branch on the
 * dialect, which it is given. A value given at the first call but never placed in the query is refused then.
 * Resolves to the first row (each hot statement reads or writes one), or undefined.
 */
export function prepared<V extends Values, R>(
  build: (db: Kysely<Database>, v: V, dialect: DialectName) => Compilable<R>,
): (s: Store, values: V) => Promise<R | undefined> {
  const templates = new Map<DialectName, Template>();
  const compile = (s: Store, values: V): Template => {
    const stand = new Proxy({} as V, { get: (_, name) => new Slot(String(name)) });
    const sql = build(s.db, stand, s.dialect).compile();
    const slots = sql.parameters.map((p) => (p instanceof Slot ? p.name : undefined));
    const unused = Object.keys(values).filter((k) => !slots.includes(k));
    if (unused.length > 0) throw new Error(`prepared query: ${unused.join(', ')} never placed in:\n${sql.sql}`);
    return { sql, slots };
  };
  return async (s, values) => {
    let t = templates.get(s.dialect);
    if (!t) {
      t = compile(s, values);
      templates.set(s.dialect, t);
    }
    const { sql, slots } = t;
    const parameters = slots.map((name, i) => (name === undefined ? sql.parameters[i] : values[name]));
    // The compiled query's tree and id go with every run: the store has no Kysely plugin that would read them.
    const { rows } = await s.db.executeQuery({ ...sql, parameters } as CompiledQuery<R>);
    return rows[0];
  };
}
