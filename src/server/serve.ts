/** `instructkit serve`: one HTTP server on localhost for the API and the built web UI. */
import { createServer, type ServerOptions } from './app.js';
import { defaultWebRoot } from './static.js';

export interface ServeOptions extends ServerOptions {
  host?: string;
  port?: number;
}

export async function serve(opts: ServeOptions = {}) {
  const { app, store } = await createServer({ dbPath: 'instructkit.sqlite', webRoot: defaultWebRoot(), ...opts });
  const address = await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 8080 });
  // Both are also handled when touched (a session on use, assignments on the next task); the sweep keeps the
  // tables and the admin's task list current between requests.
  const sweep = setInterval(() => {
    void store.sessions.deleteExpired();
    void store.tasks.releaseOverdue();
  }, 60_000);
  sweep.unref();
  const close = async () => {
    clearInterval(sweep);
    await app.close();
  };
  return { app, store, address, close };
}
