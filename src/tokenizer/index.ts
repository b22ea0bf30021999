// The tokenizer layer's public surface: Hugging Face tokenizer.json loading, byte-level BPE training, chat templates.

export * from './bytes.js';
export * from './chat.js';
export * from './errors.js';
export * from './format.js';
export * from './stream.js';
export * from './tokenizer.js';
export * from './train.js';
