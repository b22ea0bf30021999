/** Runs the API server in its own thread so the load generator does not share its event loop. */
import { parentPort, workerData } from 'node:worker_threads';
import { serve } from '../src/server/index.js';

const { dbPath, admin } = workerData as { dbPath: string; admin: { username: string; password: string } };
const s = await serve({ dbPath, port: 0, host: '127.0.0.1', passwordCost: 1024, bootstrapAdmin: admin });
parentPort!.postMessage({ address: s.address });
parentPort!.on('message', async (m) => {
  if (m === 'close') {
    await s.close();
    parentPort!.postMessage({ closed: true });
  }
});
