export * from './agreement.js';
export * from './candidates.js';
export * from './errors.js';
export * from './jsonl.js';
export { type DialectName, StaticMigrationProvider } from './migrations.js';
export * from './schema.js';
export * from './settings.js';
export { migrate, openSqliteStore, type SqliteStoreOptions } from './sqlite.js';
export * from './store.js';
