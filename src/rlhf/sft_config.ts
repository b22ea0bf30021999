// SFT's config: the base every trainer shares (cosine decay to 10 %, 3 % warmup) and its own fields; the
// pretraining mix (ptxCoef, off by default) as PPO-ptx's.
import { Type } from '@sinclair/typebox';
import { loraConfigOf } from '../models/lora.js';
import {
  baseFields,
  ConfigSpec,
  dropoutField,
  loraFields,
  promptFormatField,
  ptxFields,
  valFractionField,
} from '../train/config.js';

export const sftSpec = new ConfigSpec('sft', {
  epochs: Type.Integer({ minimum: 1, default: 16, description: 'passes over the demonstrations' }),
  dropout: dropoutField(0.2),
  valFraction: valFractionField('demonstrations'),
  evalPrompts: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'validation prompts sampled for the RM score (0: all)',
  }),
  evalMaxNewTokens: Type.Integer({ minimum: 1, default: 64, description: 'longest greedy sample for the RM score' }),
  promptFormat: promptFormatField,
  ...ptxFields(0),
  ...loraFields(),
  ...baseFields({ batchSize: 8, lr: 2e-5, warmupRatio: 0.03, minLrRatio: 0.1 }),
});

export type SftConfig = typeof sftSpec.defaults;
export const sftDefaults: SftConfig = sftSpec.defaults;

export function checkSftConfig(c: SftConfig, source = 'sft config'): void {
  sftSpec.check(c, source);
  loraConfigOf(c, source);
}
