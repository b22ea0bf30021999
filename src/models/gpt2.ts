// GPT-2 (learned positions, pre-LayerNorm, GELU, Conv1D projections), parameter names exactly Hugging Face's.
import { Conv1D, Dropout, Embedding, LayerNorm, Linear, Module, ModuleList } from '../nn/index.js';
import {
  add,
  attention,
  attentionPacked,
  check,
  gelu,
  isGradEnabled,
  matmul,
  Rng,
  reshape,
  shapeStr,
  split,
  type Tensor,
  tidy,
} from '../tensor/index.js';
import { KVCache, positionIds } from './kvcache.js';
import { type TokenIds, tokenIdsFromHF } from './token_ids.js';

export interface GPT2Config {
  /** Special-token ids from or for config.json (kept for transformers; unused here). */
  tokenIds?: TokenIds;
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nInner?: number;
  layerNormEpsilon: number;
  activation: 'gelu_new' | 'gelu';
  residPdrop: number;
  embdPdrop: number;
  tieWordEmbeddings: boolean;
}

export const gpt2Defaults: GPT2Config = {
  vocabSize: 50257,
  nPositions: 1024,
  nEmbd: 768,
  nLayer: 12,
  nHead: 12,
  layerNormEpsilon: 1e-5,
  activation: 'gelu_new',
  residPdrop: 0.1,
  embdPdrop: 0.1,
  tieWordEmbeddings: true,
};

/** Reads a Hugging Face GPT-2 config.json object; `source` names the file in errors. */
export function gpt2ConfigFromHF(json: Record<string, unknown>, source = 'config.json'): GPT2Config {
  const num = (key: string, fallback?: number): number => {
    const v = json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new Error(`${source}: field "${key}" must be a number, got ${JSON.stringify(json[key])}`);
    return v;
  };
  const act = (json.activation_function ?? 'gelu_new') as string;
  if (!['gelu_new', 'gelu', 'gelu_pytorch_tanh'].includes(act))
    throw new Error(`${source}: field "activation_function" ${JSON.stringify(act)} is not supported (gelu_new, gelu)`);
  const cfg: GPT2Config = {
    vocabSize: num('vocab_size'),
    nPositions: num('n_positions', json.n_ctx as number),
    nEmbd: num('n_embd'),
    nLayer: num('n_layer'),
    nHead: num('n_head'),
    nInner: json.n_inner == null ? undefined : num('n_inner'),
    layerNormEpsilon: num('layer_norm_epsilon', 1e-5),
    activation: act === 'gelu' ? 'gelu' : 'gelu_new',
    residPdrop: num('resid_pdrop', 0.1),
    embdPdrop: num('embd_pdrop', 0.1),
    tieWordEmbeddings: json.tie_word_embeddings !== false,
    tokenIds: tokenIdsFromHF(json, source),
  };
  if (cfg.nEmbd % cfg.nHead !== 0)
    throw new Error(`${source}: field "n_embd" (${cfg.nEmbd}) must be divisible by "n_head" (${cfg.nHead})`);
  return cfg;
}

class Attention extends Module {
  readonly c_attn: Conv1D;
  readonly c_proj: Conv1D;
  constructor(
    private readonly cfg: GPT2Config,
    rng: Rng,
  ) {
    super();
    const d = cfg.nEmbd;
    this.c_attn = this.registerModule('c_attn', new Conv1D(d, 3 * d, rng));
    this.c_proj = this.registerModule('c_proj', new Conv1D(d, d, rng, 0.02 / Math.sqrt(2 * cfg.nLayer)));
  }
  forward(x: Tensor, keyMask: Tensor | null, cache: KVCache | null, layer: number): Tensor {
    const qkv = this.c_attn.forward(x);
    if (!cache) return this.c_proj.forward(attentionPacked(qkv, this.cfg.nHead, { causal: true, keyMask }));
    // Decoding: append this step's keys and values to the cache and attend over everything written so far.
    const [B, T] = x.shape;
    const H = this.cfg.nHead;
    const hd = this.cfg.nEmbd / H;
    const [q, k, v] = split(qkv, [H * hd, H * hd, H * hd], -1).map((t) => reshape(t, [B, T, H, hd]));
    cache.write(layer, k, v);
    const kvLen = cache.length + T;
    const y = attention(q, cache.keys[layer], cache.values[layer], { causal: true, keyMask, kvLen, headMajorKV: true });
    return this.c_proj.forward(reshape(y, [B, T, H * hd]));
  }
}

class MLP extends Module {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  constructor(
    private readonly cfg: GPT2Config,
    rng: Rng,
  ) {
    super();
    const inner = cfg.nInner ?? 4 * cfg.nEmbd;
    this.c_fc = this.registerModule('c_fc', new Conv1D(cfg.nEmbd, inner, rng));
    this.c_proj = this.registerModule('c_proj', new Conv1D(inner, cfg.nEmbd, rng, 0.02 / Math.sqrt(2 * cfg.nLayer)));
  }
  forward(x: Tensor): Tensor {
    return this.c_proj.forward(gelu(this.c_fc.forward(x), this.cfg.activation === 'gelu' ? 'none' : 'tanh'));
  }
}

class Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: MLP;
  readonly drop: Dropout;
  constructor(cfg: GPT2Config, rng: Rng) {
    super();
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(cfg.nEmbd, cfg.layerNormEpsilon));
    this.attn = this.registerModule('attn', new Attention(cfg, rng));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(cfg.nEmbd, cfg.layerNormEpsilon));
    this.mlp = this.registerModule('mlp', new MLP(cfg, rng));
    this.drop = this.registerModule('drop', new Dropout(cfg.residPdrop, rng));
  }
  forward(x: Tensor, keyMask: Tensor | null, cache: KVCache | null, layer: number): Tensor {
    x = add(x, this.drop.forward(this.attn.forward(this.ln_1.forward(x), keyMask, cache, layer)));
    return add(x, this.drop.forward(this.mlp.forward(this.ln_2.forward(x))));
  }
}

/**
 * Runs one layer. Without gradients nothing of a layer is needed once its output exists, so its intermediates are
 * released right away (a scoring or prefill forward then holds one layer's activations, not every layer's).
 */
export function layerScope(fn: () => Tensor): Tensor {
  return isGradEnabled() ? fn() : tidy(fn);
}

export interface ForwardOptions {
  /** f32 (B, keys): 1 for real tokens, 0 for padding; with a cache it covers the whole cache (B, maxLen). */
  attentionMask?: Tensor | null;
  /** i32 (T) or (B, T) positions; default 0..T-1 after what the cache holds. */
  positions?: Tensor;
  /** Decode with a key/value cache: this call's tokens are appended to it. */
  cache?: KVCache;
}

/** GPT-2 with its LM head: logits (B, T, vocab) from token ids (B, T). */
export class GPT2 extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: ModuleList<Block>;
  readonly ln_f: LayerNorm;
  readonly lm_head: Linear | null;
  readonly drop: Dropout;

  constructor(
    readonly config: GPT2Config,
    rng = new Rng(0),
  ) {
    super();
    const cfg = config;
    this.wte = this.registerModule('wte', new Embedding(cfg.vocabSize, cfg.nEmbd, rng));
    this.wpe = this.registerModule('wpe', new Embedding(cfg.nPositions, cfg.nEmbd, rng, 0.01));
    this.h = this.registerModule('h', new ModuleList<Block>());
    for (let i = 0; i < cfg.nLayer; i++) this.h.push(new Block(cfg, rng));
    this.ln_f = this.registerModule('ln_f', new LayerNorm(cfg.nEmbd, cfg.layerNormEpsilon));
    this.lm_head = cfg.tieWordEmbeddings
      ? null
      : this.registerModule('lm_head', new Linear(cfg.nEmbd, cfg.vocabSize, rng, { bias: false }));
    this.drop = this.registerModule('drop', new Dropout(cfg.embdPdrop, rng));
  }

  /** Final hidden states (B, T, nEmbd). */
  hidden(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    check(
      ids.ndim === 2 && ids.dtype === 'i32',
      'GPT2',
      () => `ids must be i32 (B, T), got ${ids.dtype} ${shapeStr(ids.shape)}`,
    );
    const T = ids.shape[1];
    const cache = opts.cache ?? null;
    const start = cache?.length ?? 0;
    check(
      start + T <= this.config.nPositions,
      'GPT2',
      () => `position ${start + T} exceeds n_positions ${this.config.nPositions}`,
    );
    const positions = opts.positions ?? positionIds(start, T);
    let x = this.drop.forward(add(this.wte.forward(ids), this.wpe.forward(positions)));
    let layer = 0;
    for (const block of this.h) x = layerScope(() => block.forward(x, opts.attentionMask ?? null, cache, layer++));
    if (cache) cache.length += T;
    return this.ln_f.forward(x);
  }

  /** A cache for `batch` rows of up to maxLen positions. */
  newCache(batch: number, maxLen = this.config.nPositions): KVCache {
    const { nLayer, nHead, nEmbd } = this.config;
    return new KVCache(batch, maxLen, nLayer, nHead, nEmbd / nHead);
  }

  /** Logits from hidden states (tied head: the token embedding). */
  head(h: Tensor): Tensor {
    return this.lm_head ? this.lm_head.forward(h) : matmul(h, this.wte.weight, { transB: true });
  }

  get maxPositions(): number {
    return this.config.nPositions;
  }

  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    return this.head(this.hidden(ids, opts));
  }
}
