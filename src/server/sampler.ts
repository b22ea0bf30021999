// A served model: chat replies and labeling candidates sampled from a model folder in a worker thread.
import { Worker } from 'node:worker_threads';
import type { CandidateSource } from '../store/index.js';
import type { ChatMessage, ChatModel } from './chat.js';

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
  | { id: number; type: 'ready' | 'done' }
  | { id: number; type: 'token'; text: string }
  | { id: number; type: 'result'; texts: string[] }
  | { id: number; type: 'error'; message: string };

type Listener = (m: SamplerResponse) => void;

export class ModelSampler implements ChatModel, CandidateSource {
  private nextId = 1;
  private seed = 1;
  private readonly listeners = new Map<number, Listener>();

  private constructor(
    private readonly worker: Worker,
    readonly name: string,
  ) {
    worker.on('message', (m: SamplerResponse) => this.listeners.get(m.id)?.(m));
    worker.on('error', (e) => {
      for (const l of this.listeners.values()) l({ id: 0, type: 'error', message: e.message });
    });
  }

  /** Starts the worker and waits until the model is loaded (rejects with the loader's error). */
  static start(settings: Partial<SamplerSettings> & { dir: string }, name = settings.dir): Promise<ModelSampler> {
    const full: SamplerSettings = { maxNewTokens: 96, temperature: 0.8, topP: 0.95, ...settings };
    const worker = new Worker(new URL('./sampler_worker.js', import.meta.url), { workerData: full });
    const sampler = new ModelSampler(worker, name);
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

  async *stream(
    messages: readonly ChatMessage[],
    opts: { signal?: AbortSignal; seed?: number },
  ): AsyncIterable<string> {
    const last = [...messages].reverse().find((m) => m.role === 'user');
    const queue: SamplerResponse[] = [];
    let wake: (() => void) | null = null;
    const id = this.send(
      { kind: 'chat', prompt: last?.content ?? '', messages: [...messages], seed: opts.seed ?? this.seed++ },
      (m) => {
        queue.push(m);
        wake?.();
      },
    );
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
        else if (m.type === 'error') throw new Error(m.message);
        else return;
      }
    } finally {
      this.listeners.delete(id);
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
