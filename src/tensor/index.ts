// The tensor layer's public surface: import ops from here.

export * from './autocast.js';
export * from './create.js';
export { getThreads, native, type ProfileRow, profileReport, resetProfile, setThreads } from './native.js';
export * from './ops/attention.js';
export * from './ops/elementwise.js';
export * from './ops/matmul.js';
export * from './ops/nn.js';
export * from './ops/reduce.js';
export * from './ops/shape.js';
export * from './random.js';
export * from './tensor.js';
