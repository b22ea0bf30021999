// The pretraining mix of PPO-ptx and SFT (InstructGPT §3.5: "PPO-ptx"; here also for SFT's own forgetting): each
// update adds γ_ptx × the next-token loss of the model on the corpus's next windows, in order and cycled.
import type { CausalLM } from '../models/index.js';
import { crossEntropy, reshape, scale } from '../tensor/index.js';
import { LmWindows } from '../train/batches.js';
import type { StepOutput } from '../train/loop.js';
import { METRIC } from '../train/metrics.js';

export interface PtxConfig {
  ptxCoef: number;
  ptxBatchSize: number;
  ptxSeqLen: number;
}

/** The corpus's windows when the mix is on (token ids given and γ_ptx > 0), else null. */
export function ptxWindows(tokens: number[] | null | undefined, c: PtxConfig, context: number): LmWindows | null {
  return tokens != null && c.ptxCoef > 0 ? new LmWindows(tokens, c.ptxSeqLen, context) : null;
}

/** γ_ptx × the LM loss of the next ptxBatchSize windows; logs the unscaled loss as ptx/loss. */
export function ptxStep(model: CausalLM, windows: LmWindows, c: PtxConfig): StepOutput {
  const { ids, targets } = windows.next(c.ptxBatchSize);
  const logits = model.forward(ids);
  const lm = crossEntropy(reshape(logits, [targets.numel, logits.size(-1)]), targets);
  return { loss: scale(lm, c.ptxCoef), metrics: { [METRIC.ptxLoss]: lm.item() }, tokens: targets.numel };
}
