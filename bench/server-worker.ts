/**
 * One API server process for `npm run bench:server` (its own process, so the load generator shares no event loop
 * with it, and so that it can be killed with SIGKILL). Sends its address to the parent; stops on 'close'.
 */
import { serve } from '../src/server/index.js';

const [db, admin] = [process.env.BENCH_DB!, JSON.parse(process.env.BENCH_ADMIN!)];
const s = await serve({ dbPath: db, port: 0, host: '127.0.0.1', passwordCost: 1024, bootstrapAdmin: admin });
process.send!({ address: s.address });
process.on('message', async (m) => {
  if (m === 'close') {
    await s.close();
    process.send!({ closed: true }, () => process.exit(0));
  }
});
