// The same suite on PostgreSQL (see helpers/db.ts).
import { onPostgres } from './helpers/db.js';

await onPostgres(() => import('./server.queries.test.js'));
