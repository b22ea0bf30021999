// Checkpoints the SQLite write-ahead log on its own connection and thread, so that the server's thread only
// appends to the log: copying pages back into the database no longer lands on whichever request commits next.
import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';

const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const db = new SqliteDatabase(path);
db.pragma('busy_timeout = 1000');
const timer = setInterval(() => {
  try {
    // PASSIVE never waits for the writer; pages it cannot copy now are copied next time.
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // A busy database skips one checkpoint; the next one catches up.
  }
}, intervalMs);
parentPort!.once('message', () => {
  clearInterval(timer);
  // If this is the last connection, closing checkpoints what is left and removes the log.
  db.close();
  parentPort!.close();
});
