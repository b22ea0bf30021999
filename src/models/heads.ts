// A scalar head on a transformer trunk: the reward model (score at the last real token) and the value model
// (a score at every token). Named as Hugging Face's *ForSequenceClassification: the trunk's own names + `score.*`.
import { Linear, Module } from '../nn/index.js';
import { check, embedding, Rng, reshape, shapeStr, Tensor } from '../tensor/index.js';
import type { ForwardOptions } from './gpt2.js';
import type { CausalLM } from './hf.js';

export class ScalarModel extends Module {
  readonly score: Linear;
  constructor(
    readonly trunk: CausalLM,
    rng = new Rng(0),
  ) {
    super();
    // The trunk's parameters keep their names (no prefix), as in Hugging Face checkpoints; its LM head is unused.
    for (const [name, child] of trunk.namedChildren()) if (name !== 'lm_head') this.registerModule(name, child);
    this.score = this.registerModule('score', new Linear(hiddenSize(trunk), 1, rng, { std: 0 }));
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
  scoreAt(ids: Tensor, lastIndex: Int32Array | number[], opts: ForwardOptions = {}): Tensor {
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
    return reshape(this.score.forward(picked), [B]);
  }
}

export function hiddenSize(model: CausalLM): number {
  return 'nEmbd' in model.config ? model.config.nEmbd : model.config.hiddenSize;
}
