// A scalar head on a transformer trunk: the reward model (score at the last real token) and the value model
// (a score at every token). Named as Hugging Face's *ForSequenceClassification: the trunk's own names + `score.*`.
import { Linear, Module } from '../nn/index.js';
import { add, check, embedding, mul, Rng, reshape, shapeStr, Tensor } from '../tensor/index.js';
import type { ForwardOptions } from './gpt2.js';
import type { CausalLM } from './hf.js';
import { responseLogps } from './score.js';

export interface ScalarModelOptions {
  /**
   * Starting weight of a second term in the score: the response's mean per-token log-likelihood under the trunk's
   * own LM head, which then trains with the rest (null: the plain scalar head, as the paper's reward model). The
   * LM head holds what the model learned about right answers; a head reading the last token alone rarely learns to
   * recompute it from rankings.
   */
  likelihood?: number | null;
}

export interface ScoreOptions extends ForwardOptions {
  /** Where each row's response begins (its prompt length); needed when the score has a likelihood term. */
  responseStart?: readonly number[];
}

/** One learned number: a module, so that LoRA's modules_to_save can keep it trainable by name. */
class Weight extends Module {
  readonly weight: Tensor;
  constructor(value: number) {
    super();
    this.weight = this.registerParameter('weight', Tensor.fromBuffer(Float32Array.of(value), [1]));
  }
}

export class ScalarModel extends Module {
  readonly score: Linear;
  /** The likelihood term's weight, or null without one. */
  readonly likelihood: Weight | null;
  constructor(
    readonly trunk: CausalLM,
    rng = new Rng(0),
    opts: ScalarModelOptions = {},
  ) {
    super();
    const withLikelihood = opts.likelihood !== undefined && opts.likelihood !== null;
    // The trunk's parameters keep their names (no prefix), as in Hugging Face checkpoints; its LM head is used only
    // by the likelihood term.
    for (const [name, child] of trunk.namedChildren())
      if (name !== 'lm_head' || withLikelihood) this.registerModule(name, child);
    this.score = this.registerModule('score', new Linear(hiddenSize(trunk), 1, rng, { std: 0 }));
    this.likelihood = withLikelihood ? this.registerModule('likelihood', new Weight(opts.likelihood!)) : null;
  }

  /** One score per token: (B, T). */
  scoresPerToken(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const h = this.trunk.hidden(ids, opts);
    const [B, T] = ids.shape;
    return reshape(this.score.forward(h), [B, T]);
  }

  /**
   * One score per sequence, read at each row's last real token (B): `lastIndex[b]` is that position. With right
   * padding it is (number of real tokens − 1); with left padding, T − 1.
   */
  scoreAt(ids: Tensor, lastIndex: Int32Array | number[], opts: ScoreOptions = {}): Tensor {
    const [B, T] = ids.shape;
    check(lastIndex.length === B, 'ScalarModel', () => `${lastIndex.length} indices for batch ${shapeStr(ids.shape)}`);
    const h = this.trunk.hidden(ids, opts);
    const D = h.size(-1);
    const rows = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      check(lastIndex[b] >= 0 && lastIndex[b] < T, 'ScalarModel', () => `index ${lastIndex[b]} outside [0, ${T})`);
      rows[b] = b * T + lastIndex[b];
    }
    const picked = embedding(reshape(h, [B * T, D]), Tensor.fromBuffer(rows, [B])); // a differentiable row gather
    const score = reshape(this.score.forward(picked), [B]);
    if (!this.likelihood) return score;
    const start = opts.responseStart;
    check(start !== undefined, 'ScalarModel', () => 'this reward model has a likelihood term: give responseStart');
    return add(score, mul(this.meanLogLikelihood(h, ids, lastIndex, start), this.likelihood.weight));
  }

  // Mean log π(token | earlier tokens) over each row's response tokens [start, last], through the trunk's LM head.
  // Only the positions that predict a response token go through the head: (B, longest response, vocabulary) logits
  // rather than (B, T, vocabulary), which for a long prompt and a 150k vocabulary is gigabytes.
  private meanLogLikelihood(h: Tensor, ids: Tensor, last: ArrayLike<number>, start: readonly number[]): Tensor {
    const [B, T] = ids.shape;
    check(start.length === B, 'ScalarModel', () => `${start.length} response starts for batch ${shapeStr(ids.shape)}`);
    const tokens: number[] = [];
    for (let b = 0; b < B; b++) {
      check(
        start[b] >= 1 && start[b] <= last[b] && last[b] < T,
        'ScalarModel',
        () =>
          `row ${b}: the response must start after the prompt's first token, hold a token and end in the row (start ${start[b]}, last ${last[b]}, length ${T})`,
      );
      tokens.push(last[b] - start[b] + 1);
    }
    const L = Math.max(...tokens);
    // Row b's j-th entry is the position predicting its j-th response token; padding entries repeat the row's
    // first position with an ignored target.
    const rows = new Int32Array(B * L);
    const targets = Tensor.empty([B, L], 'i32');
    targets.i32.fill(-100);
    for (let b = 0; b < B; b++) {
      rows.fill(b * T, b * L, (b + 1) * L);
      for (let j = 0; j < tokens[b]; j++) {
        const t = start[b] - 1 + j;
        rows[b * L + j] = b * T + t;
        targets.i32[b * L + j] = ids.i32[b * T + t + 1];
      }
    }
    const D = h.size(-1);
    const picked = reshape(embedding(reshape(h, [B * T, D]), Tensor.fromBuffer(rows, [B * L])), [B, L, D]);
    return responseLogps(this.trunk.head(picked), targets, tokens);
  }
}

export function hiddenSize(model: CausalLM): number {
  return 'nEmbd' in model.config ? model.config.nEmbd : model.config.hiddenSize;
}
