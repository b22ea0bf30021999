// The sampling thread behind ModelSampler: loads one model folder and answers chat and candidate requests in turn,
// so that generation never blocks the HTTP server's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { generate, loadPretrained } from '../models/index.js';
import { CHAT_TOKENS, Formatter, Tokenizer, textStreamer } from '../tokenizer/index.js';
import { CANCEL_SLOTS, type SamplerRequest, type SamplerResponse, type SamplerSettings } from './sampler.js';

const port = parentPort!;
const { settings, cancelBuffer } = workerData as { settings: SamplerSettings; cancelBuffer: SharedArrayBuffer };
const cancelFlags = new Int32Array(cancelBuffer);
const post = (m: SamplerResponse) => port.postMessage(m);

try {
  // A checkpoint stored in bf16 stays bf16: half the memory, and decode steps read half the bytes.
  const model = loadPretrained(settings.dir, { dtype: 'auto' });
  const tokenizer = Tokenizer.fromDir(settings.dir);
  const format = new Formatter(tokenizer, settings.dir);
  const end = tokenizer.tokenToId(CHAT_TOKENS.end);
  const stopIds = end === null ? [format.eosId] : [format.eosId, end];
  const decode = (ids: number[]) => tokenizer.decode(ids, { skipSpecialTokens: true });

  // Room kept for the reply when a conversation is cut to fit: the reply's token limit, at most a quarter of the context.
  const replyRoom = Math.max(1, Math.min(settings.maxNewTokens, Math.floor(model.maxPositions / 4)));

  /**
   * The prompt's tokens, leaving out the oldest user/assistant exchanges (never a system turn or the newest message)
   * until the reply has room; a newest message too long for the context on its own is an error.
   */
  const fit = (req: SamplerRequest): { ids: number[]; dropped: number } => {
    let messages = req.messages;
    let ids = format.prompt(req.prompt, messages);
    let dropped = 0;
    while (messages && ids.length + replyRoom > model.maxPositions) {
      const first = messages[0]?.role === 'system' ? 1 : 0;
      if (messages.length - first < 3) break;
      messages = [...messages.slice(0, first), ...messages.slice(first + 2)];
      dropped += 2;
      ids = format.prompt(req.prompt, messages);
    }
    if (ids.length >= model.maxPositions) {
      const error = new Error(
        `the message is ${ids.length} tokens with the chat template; the model's context holds ${model.maxPositions}: shorten it`,
      );
      throw Object.assign(error, { contextTooLong: true });
    }
    return { ids, dropped };
  };

  port.on('message', (req: SamplerRequest) => {
    try {
      const { ids, dropped } = fit(req);
      const room = model.maxPositions - ids.length;
      if (dropped > 0) post({ id: req.id, type: 'context', droppedMessages: dropped });
      const common = {
        maxNewTokens: Math.min(settings.maxNewTokens, room),
        temperature: settings.temperature,
        topP: settings.topP,
        seed: req.seed,
        eosTokenIds: stopIds,
        padTokenId: format.padId,
      };
      if (req.kind === 'chat') {
        const stream = textStreamer(tokenizer);
        const out = generate(model, [ids], {
          ...common,
          shouldStop: () => Atomics.load(cancelFlags, req.id % CANCEL_SLOTS) === req.id,
          onToken: (_row, token) => {
            if (stopIds.includes(token)) return;
            const text = stream.push(token);
            if (text) post({ id: req.id, type: 'token', text });
          },
        });
        const tail = stream.flush();
        if (tail) post({ id: req.id, type: 'token', text: tail });
        const cancelled = out.finishReasons[0] === 'cancelled';
        post({ id: req.id, type: 'done', tokens: out.tokens[0].length, cancelled });
      } else {
        const out = generate(
          model,
          Array.from({ length: req.k }, () => ids),
          { ...common, decode },
        );
        post({ id: req.id, type: 'result', texts: out.texts!.map((t) => t.trim()) });
      }
    } catch (e) {
      const contextTooLong = (e as { contextTooLong?: boolean }).contextTooLong === true;
      post({ id: req.id, type: 'error', message: (e as Error).message, contextTooLong });
    }
  });
  post({ id: 0, type: 'ready' });
} catch (e) {
  post({ id: 0, type: 'error', message: (e as Error).message });
}
