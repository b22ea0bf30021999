export * from './generate.js';
export * from './gpt2.js';
export * from './heads.js';
export * from './hf.js';
export * from './kvcache.js';
export * from './llama.js';
export * from './safetensors.js';
export * from './token_ids.js';
