// A served model: chat replies and labeling candidates sampled from a model folder in a worker thread.
import { Worker } from 'node:worker_threads';
import type { CandidateSource } from '../store/index.js';
import { type ChatMessage, type ChatModel, type ChatStreamOptions, ContextTooLongError } from './chat.js';

export interface SamplerSettings {
  dir: string;
  maxNewTokens: number;
  temperature: number;
  topP: number;
}

type Request =
  | { kind: 'chat'; prompt: string; messages: ChatMessage[]; seed: number }
  | { kind: 'candidates'; prompt: string; messages?: undefined; seed: number; k: number };
export type SamplerRequest = Request & { id: number };

export type SamplerResponse =
  | { id: number; type: 'ready' }
  | { id: number; type: 'done'; tokens: number; cancelled: boolean }
  | { id: number; type: 'token'; text: string }
  | { id: number; type: 'context'; droppedMessages: number }
  | { id: number; type: 'result'; texts: string[] }
  | { id: number; type: 'error'; message: string; contextTooLong?: boolean };

type Listener = (m: SamplerResponse) => void;

/** How a chat reply ended in the worker: tokens sampled, and whether it was stopped early. */
export interface ChatReplyStats {
  tokens: number;
  cancelled: boolean;
}

/**
 * Cancellation travels through shared memory because the worker samples synchronously and reads no messages until
 * a reply is done. Slot `id % CANCEL_SLOTS` holding `id` means "stop request id"; it also reaches requests still
 * queued. Slots are reused only after this many newer requests.
 */
export const CANCEL_SLOTS = 1024;

export class ModelSampler implements ChatModel, CandidateSource {
  private nextId = 1;
  private seed = 1;
  private readonly listeners = new Map<number, Listener>();

  private constructor(
    private readonly worker: Worker,
    readonly name: string,
    private readonly cancelFlags: Int32Array,
    private readonly onChatFinished?: (stats: ChatReplyStats) => void,
  ) {
    worker.on('message', (m: SamplerResponse) => this.listeners.get(m.id)?.(m));
    worker.on('error', (e) => {
      for (const l of this.listeners.values()) l({ id: 0, type: 'error', message: e.message });
    });
  }

  /**
   * Starts the worker and waits until the model is loaded (rejects with the loader's error). `onChatFinished` hears
   * how each chat reply ended (for logs and tests).
   */
  static start(
    settings: Partial<SamplerSettings> & { dir: string },
    name = settings.dir,
    hooks: { onChatFinished?: (stats: ChatReplyStats) => void } = {},
  ): Promise<ModelSampler> {
    const full: SamplerSettings = { maxNewTokens: 96, temperature: 0.8, topP: 0.95, ...settings };
    const cancelBuffer = new SharedArrayBuffer(CANCEL_SLOTS * Int32Array.BYTES_PER_ELEMENT);
    const worker = new Worker(new URL('./sampler_worker.js', import.meta.url), {
      workerData: { settings: full, cancelBuffer },
    });
    const sampler = new ModelSampler(worker, name, new Int32Array(cancelBuffer), hooks.onChatFinished);
    return new Promise((resolve, reject) => {
      sampler.listeners.set(0, (m) => {
        sampler.listeners.delete(0);
        if (m.type === 'ready') resolve(sampler);
        else {
          void worker.terminate();
          reject(new Error(`cannot serve ${settings.dir}: ${m.type === 'error' ? m.message : m.type}`));
        }
      });
    });
  }

  async *stream(messages: readonly ChatMessage[], opts: ChatStreamOptions): AsyncIterable<string> {
    const last = [...messages].reverse().find((m) => m.role === 'user');
    const queue: SamplerResponse[] = [];
    let wake: (() => void) | null = null;
    let finished = false;
    const id = this.send(
      { kind: 'chat', prompt: last?.content ?? '', messages: [...messages], seed: opts.seed ?? this.seed++ },
      (m) => {
        // Listens until the worker is done with the request, even after the reader has gone.
        if (m.type === 'done' || m.type === 'error') {
          finished = true;
          this.listeners.delete(id);
          if (m.type === 'done') this.onChatFinished?.({ tokens: m.tokens, cancelled: m.cancelled });
        }
        queue.push(m);
        wake?.();
      },
    );
    const onAbort = () => wake?.();
    opts.signal?.addEventListener('abort', onAbort);
    try {
      while (true) {
        if (opts.signal?.aborted) return;
        const m = queue.shift();
        if (!m) {
          await new Promise<void>((r) => (wake = r));
          wake = null;
          continue;
        }
        if (m.type === 'token') yield m.text;
        else if (m.type === 'context') opts.onTruncate?.(m.droppedMessages);
        else if (m.type === 'error') throw m.contextTooLong ? new ContextTooLongError(m.message) : new Error(m.message);
        else return;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      // The reader stopped early (aborted, or broke out of the loop): the worker drops the rest of the reply.
      if (!finished) Atomics.store(this.cancelFlags, id % CANCEL_SLOTS, id);
    }
  }

  generate(prompt: string, k: number): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const id = this.send({ kind: 'candidates', prompt, seed: this.seed++, k }, (m) => {
        this.listeners.delete(id);
        if (m.type === 'result') resolve(m.texts);
        else reject(new Error(m.type === 'error' ? m.message : `unexpected ${m.type}`));
      });
    });
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }

  private send(req: Request, listener: Listener): number {
    const id = this.nextId++;
    this.listeners.set(id, listener);
    this.worker.postMessage({ ...req, id });
    return id;
  }
}
