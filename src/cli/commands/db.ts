// instructkit db copy: moves the labels between SQLite and PostgreSQL, verified table by table.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { copyStore, describeDb, isPostgresUrl, openStore } from '../../store/index.js';

const HELP = `usage: instructkit db copy --from DB --to DB

Copies every table of one labels database into another, new one, keeping ids: SQLite to PostgreSQL or back
(DB is a SQLite file or a postgres://user:pass@host:5432/db URL). The target must be empty (a new database: the
tables are created); the copy is one transaction, verified per table by row count and a SHA-256 of its rows, and
rolled back if anything differs. Stop the app servers first, so that nothing changes while it copies.`;

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === undefined) {
    console.log(HELP);
    return sub === undefined ? 1 : 0;
  }
  if (sub !== 'copy') throw new Error(`db: unknown subcommand "${sub}" (only: copy)`);
  const { values } = parseArgs({
    args: rest,
    options: { from: { type: 'string' }, to: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.from || !values.to) throw new Error('db copy needs --from DB and --to DB');
  if (values.from === values.to) throw new Error('db copy: --from and --to are the same database');
  // Opening a SQLite path that does not exist would create an empty database to copy from.
  if (!isPostgresUrl(values.from) && !existsSync(values.from))
    throw new Error(`db copy --from: no file ${values.from}`);
  const from = await openStore({ db: values.from });
  try {
    const to = await openStore({ db: values.to });
    try {
      const started = Date.now();
      const tables = await copyStore(from, to, (t) =>
        console.error(`${t.table.padEnd(18)} ${String(t.rows).padStart(8)} rows  sha256 ${t.sha256.slice(0, 16)}…`),
      );
      const rows = tables.reduce((n, t) => n + t.rows, 0);
      console.error(`copied ${rows} rows from ${describeDb(values.from)} to ${describeDb(values.to)}, verified`);
      console.log(
        JSON.stringify({
          from: describeDb(values.from),
          to: describeDb(values.to),
          rows,
          tables: Object.fromEntries(tables.map((t) => [t.table, { rows: t.rows, sha256: t.sha256 }])),
          verified: true,
          wall_s: (Date.now() - started) / 1000,
        }),
      );
      return 0;
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}
