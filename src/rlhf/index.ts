// The rlhf layer's public surface: the trainers of InstructGPT's steps and the data plumbing they share.

export * from './data.js';
export * from './dpo.js';
export * from './eval_stats.js';
export * from './grpo.js';
export * from './preferences.js';
export * from './reward.js';
export * from './reward_sources.js';
export * from './sft.js';
