export * from './candidates.js';
export * from './corpus.js';
export * from './facts.js';
export * from './tasks.js';
export * from './world.js';
