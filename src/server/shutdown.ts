/**
 * Prompt shutdown. Node's `server.close()` (which Fastify's `close()` awaits) ends keep-alive connections that sit
 * idle after a request, but not one on which no request has started yet: that waits for the 60 s header timeout.
 * Such sockets are common — undici opens a spare one when a streamed fetch is aborted, browsers preconnect — so
 * `close()` took ~70 s after a labeler stopped a chat reply. Here every connection without a request in flight is
 * ended at once, and the others as soon as their response is done (in-flight requests still finish).
 */
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

export function closeConnectionsPromptly(app: FastifyInstance): void {
  const inFlight = new Map<Socket, number>();
  let closing = false;
  app.server.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.on('close', () => inFlight.delete(socket));
  });
  app.server.on('request', (req, res) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    res.on('close', () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      inFlight.set(socket, left);
      if (closing && left === 0) socket.destroy();
    });
  });
  app.addHook('preClose', async () => {
    closing = true;
    for (const [socket, n] of inFlight) if (n === 0) socket.destroy();
  });
}
