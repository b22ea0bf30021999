export * from './candidates.js';
export * from './checker.js';
export * from './corpus.js';
export * from './facts.js';
export * from './kinds.js';
export * from './tasks.js';
export * from './world.js';
