// The tensor layer's public surface: import ops from here.
export * from './tensor.js';
export * from './create.js';
export * from './random.js';
export * from './autocast.js';
export { native, setThreads, getThreads } from './native.js';
export * from './ops/matmul.js';
