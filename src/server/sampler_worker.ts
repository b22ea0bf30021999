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
  const model = loadPretrained(settings.dir);
  const tokenizer = Tokenizer.fromDir(settings.dir);
  const format = new Formatter(tokenizer, settings.dir);
  const end = tokenizer.tokenToId(CHAT_TOKENS.end);
  const stopIds = end === null ? [format.eosId] : [format.eosId, end];
  const decode = (ids: number[]) => tokenizer.decode(ids, { skipSpecialTokens: true });

  port.on('message', (req: SamplerRequest) => {
    try {
      const ids = format.prompt(req.prompt, req.messages);
      const room = model.maxPositions - ids.length;
      if (room < 1)
        throw new Error(`the conversation has ${ids.length} tokens; the model's context is ${model.maxPositions}`);
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
      post({ id: req.id, type: 'error', message: (e as Error).message });
    }
  });
  post({ id: 0, type: 'ready' });
} catch (e) {
  post({ id: 0, type: 'error', message: (e as Error).message });
}
