export * from './agreement.js';
export * from './export.js';
export * from './labeler.js';
export * from './pools.js';
export * from './simulated.js';
export * from './writing.js';
