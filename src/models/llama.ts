// Llama family (Llama, SmolLM, Qwen2, Mistral): RoPE, RMSNorm, SwiGLU, grouped-query attention, optional q/k/v bias,
// tied or untied head, optional sliding-window attention. Parameter names exactly Hugging Face's (`model.layers.0.self_attn.q_proj.weight`).
import { Embedding, Linear, Module, ModuleList, RMSNorm } from '../nn/index.js';
import {
  add,
  attention,
  check,
  matmul,
  mul,
  Rng,
  reshape,
  rope,
  shapeStr,
  silu,
  type Tensor,
} from '../tensor/index.js';
import { layerScope } from './gpt2.js';
import { KVCache, positionIds } from './kvcache.js';
import { type RopeScaling, ropeFromHF, ropeInvFreq } from './rope_scaling.js';
import { type TokenIds, tokenIdsFromHF } from './token_ids.js';

export interface LlamaConfig {
  /** Special-token ids from or for config.json (kept for transformers; unused here). */
  tokenIds?: TokenIds;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Frequency scaling (Llama 3.x, linear), or none. */
  ropeScaling?: RopeScaling | null;
  maxPositions: number;
  tieWordEmbeddings: boolean;
  /** Bias on the q/k/v projections (Qwen2, and Llama with attention_bias). */
  qkvBias: boolean;
  /** Bias on the output projection (Llama with attention_bias; never Qwen2). */
  oBias: boolean;
  /** Sliding-window attention: each token sees the last this-many positions (Mistral; Qwen2's use_sliding_window). */
  slidingWindow?: number | null;
  /** Layers below this index keep full attention (Qwen2's max_window_layers; 0 for Mistral). */
  maxWindowLayers?: number;
}

/** Reads a Hugging Face Llama / Qwen2 config.json object; `source` names the file in errors. */
export function llamaConfigFromHF(json: Record<string, unknown>, source = 'config.json'): LlamaConfig {
  const num = (key: string, fallback?: number): number => {
    const v = json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new Error(`${source}: field "${key}" must be a number, got ${JSON.stringify(json[key])}`);
    return v;
  };
  const rope = ropeFromHF(json, source);
  if (json.mlp_bias === true) throw new Error(`${source}: field "mlp_bias" true is not supported (no MLP biases)`);
  if (json.hidden_act !== undefined && json.hidden_act !== 'silu')
    throw new Error(`${source}: field "hidden_act" ${JSON.stringify(json.hidden_act)} is not supported (silu only)`);
  const hidden = num('hidden_size');
  const heads = num('num_attention_heads');
  const cfg: LlamaConfig = {
    vocabSize: num('vocab_size'),
    hiddenSize: hidden,
    intermediateSize: num('intermediate_size'),
    numLayers: num('num_hidden_layers'),
    numHeads: heads,
    numKvHeads: num('num_key_value_heads', heads),
    headDim: num('head_dim', hidden / heads),
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    maxPositions: num('max_position_embeddings', 2048),
    tieWordEmbeddings: json.tie_word_embeddings === true,
    qkvBias: json.attention_bias === true || json.model_type === 'qwen2',
    oBias: json.attention_bias === true && json.model_type !== 'qwen2',
    tokenIds: tokenIdsFromHF(json, source),
    ...slidingWindowFromHF(json, source),
  };
  if (cfg.numHeads % cfg.numKvHeads !== 0)
    throw new Error(
      `${source}: field "num_attention_heads" (${cfg.numHeads}) must be a multiple of "num_key_value_heads" (${cfg.numKvHeads})`,
    );
  if (!Number.isInteger(cfg.headDim))
    throw new Error(`${source}: field "hidden_size" (${hidden}) is not divisible by "num_attention_heads" (${heads})`);
  return cfg;
}

// Mistral applies sliding_window (when set) to every layer; Qwen2 only with use_sliding_window, from layer
// max_window_layers on (as transformers' layer_types).
function slidingWindowFromHF(
  json: Record<string, unknown>,
  source: string,
): Pick<LlamaConfig, 'slidingWindow' | 'maxWindowLayers'> {
  const on = json.model_type === 'mistral' || (json.model_type === 'qwen2' && json.use_sliding_window === true);
  if (!on || json.sliding_window == null) return {};
  const w = json.sliding_window;
  if (typeof w !== 'number' || !Number.isInteger(w) || w < 1)
    throw new Error(`${source}: field "sliding_window" must be an integer >= 1 or null, got ${JSON.stringify(w)}`);
  const from = json.model_type === 'qwen2' ? (json.max_window_layers ?? 28) : 0;
  if (typeof from !== 'number' || !Number.isInteger(from) || from < 0)
    throw new Error(`${source}: field "max_window_layers" must be an integer >= 0, got ${JSON.stringify(from)}`);
  return { slidingWindow: w, maxWindowLayers: from };
}

class SelfAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  private readonly invFreq: Float32Array;
  private readonly window: number | null;
  constructor(
    private readonly cfg: LlamaConfig,
    rng: Rng,
    layer: number,
  ) {
    super();
    this.window = layer >= (cfg.maxWindowLayers ?? 0) ? (cfg.slidingWindow ?? null) : null;
    const { hiddenSize: d, numHeads: h, numKvHeads: kv, headDim: hd, qkvBias: bias } = cfg;
    this.q_proj = this.registerModule('q_proj', new Linear(d, h * hd, rng, { bias }));
    this.k_proj = this.registerModule('k_proj', new Linear(d, kv * hd, rng, { bias }));
    this.v_proj = this.registerModule('v_proj', new Linear(d, kv * hd, rng, { bias }));
    this.o_proj = this.registerModule('o_proj', new Linear(h * hd, d, rng, { bias: cfg.oBias }));
    this.invFreq = ropeInvFreq({ theta: cfg.ropeTheta, scaling: cfg.ropeScaling ?? null }, hd);
  }
  forward(x: Tensor, positions: Tensor, keyMask: Tensor | null, cache: KVCache | null, layer: number): Tensor {
    const [B, T] = x.shape;
    const { numHeads: h, numKvHeads: kv, headDim: hd } = this.cfg;
    const invFreq = this.invFreq;
    const q = rope(reshape(this.q_proj.forward(x), [B, T, h, hd]), positions, { invFreq });
    const k = rope(reshape(this.k_proj.forward(x), [B, T, kv, hd]), positions, { invFreq });
    const v = reshape(this.v_proj.forward(x), [B, T, kv, hd]);
    let y: Tensor;
    if (cache) {
      cache.write(layer, k, v);
      y = attention(q, cache.keys[layer], cache.values[layer], {
        causal: true,
        keyMask,
        kvLen: cache.length + T,
        headMajorKV: true,
        window: this.window,
      });
    } else y = attention(q, k, v, { causal: true, keyMask, window: this.window });
    return this.o_proj.forward(reshape(y, [B, T, h * hd]));
  }
}

class SwiGLU extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(cfg: LlamaConfig, rng: Rng) {
    super();
    const { hiddenSize: d, intermediateSize: f } = cfg;
    this.gate_proj = this.registerModule('gate_proj', new Linear(d, f, rng, { bias: false }));
    this.up_proj = this.registerModule('up_proj', new Linear(d, f, rng, { bias: false }));
    this.down_proj = this.registerModule('down_proj', new Linear(f, d, rng, { bias: false }));
  }
  forward(x: Tensor): Tensor {
    return this.down_proj.forward(mul(silu(this.gate_proj.forward(x)), this.up_proj.forward(x)));
  }
}

class DecoderLayer extends Module {
  readonly input_layernorm: RMSNorm;
  readonly self_attn: SelfAttention;
  readonly post_attention_layernorm: RMSNorm;
  readonly mlp: SwiGLU;
  constructor(cfg: LlamaConfig, rng: Rng, layer: number) {
    super();
    this.self_attn = this.registerModule('self_attn', new SelfAttention(cfg, rng, layer));
    this.mlp = this.registerModule('mlp', new SwiGLU(cfg, rng));
    this.input_layernorm = this.registerModule('input_layernorm', new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps));
    this.post_attention_layernorm = this.registerModule(
      'post_attention_layernorm',
      new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps),
    );
  }
  forward(x: Tensor, positions: Tensor, keyMask: Tensor | null, cache: KVCache | null, layer: number): Tensor {
    x = add(x, this.self_attn.forward(this.input_layernorm.forward(x), positions, keyMask, cache, layer));
    return add(x, this.mlp.forward(this.post_attention_layernorm.forward(x)));
  }
}

class Backbone extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<DecoderLayer>;
  readonly norm: RMSNorm;
  constructor(cfg: LlamaConfig, rng: Rng) {
    super();
    this.embed_tokens = this.registerModule('embed_tokens', new Embedding(cfg.vocabSize, cfg.hiddenSize, rng));
    this.layers = this.registerModule('layers', new ModuleList<DecoderLayer>());
    for (let i = 0; i < cfg.numLayers; i++) this.layers.push(new DecoderLayer(cfg, rng, i));
    this.norm = this.registerModule('norm', new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps));
  }
}

export interface LlamaForwardOptions {
  /** f32 (B, keys): 1 for real tokens, 0 for padding; with a cache it covers the whole cache (B, maxLen). */
  attentionMask?: Tensor | null;
  /** i32 (T) or (B, T) positions; default 0..T-1 after what the cache holds. */
  positions?: Tensor;
  /** Decode with a key/value cache: this call's tokens are appended to it. */
  cache?: KVCache;
}

/** Llama-family causal LM: logits (B, T, vocab) from token ids (B, T). */
export class Llama extends Module {
  readonly model: Backbone;
  readonly lm_head: Linear | null;
  constructor(
    readonly config: LlamaConfig,
    rng = new Rng(0),
  ) {
    super();
    this.model = this.registerModule('model', new Backbone(config, rng));
    this.lm_head = config.tieWordEmbeddings
      ? null
      : this.registerModule('lm_head', new Linear(config.hiddenSize, config.vocabSize, rng, { bias: false }));
  }

  hidden(ids: Tensor, opts: LlamaForwardOptions = {}): Tensor {
    check(
      ids.ndim === 2 && ids.dtype === 'i32',
      'Llama',
      () => `ids must be i32 (B, T), got ${ids.dtype} ${shapeStr(ids.shape)}`,
    );
    const T = ids.shape[1];
    const cache = opts.cache ?? null;
    const start = cache?.length ?? 0;
    const positions = opts.positions ?? positionIds(start, T);
    let x = this.model.embed_tokens.forward(ids);
    let i = 0;
    for (const layer of this.model.layers)
      x = layerScope(() => layer.forward(x, positions, opts.attentionMask ?? null, cache, i++));
    if (cache) cache.length += T;
    return this.model.norm.forward(x);
  }

  /** A cache for `batch` rows of up to maxLen positions. */
  newCache(batch: number, maxLen = this.config.maxPositions): KVCache {
    const { numLayers, numKvHeads, headDim } = this.config;
    return new KVCache(batch, maxLen, numLayers, numKvHeads, headDim);
  }

  /** Logits from hidden states (tied head: the token embedding). */
  head(h: Tensor): Tensor {
    return this.lm_head ? this.lm_head.forward(h) : matmul(h, this.model.embed_tokens.weight, { transB: true });
  }

  get maxPositions(): number {
    return this.config.maxPositions;
  }

  forward(ids: Tensor, opts: LlamaForwardOptions = {}): Tensor {
    return this.head(this.hidden(ids, opts));
  }
}
