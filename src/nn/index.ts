// The nn layer's public surface: modules, parameters, optimizers, clipping, schedules.

export * from './clip.js';
export * from './layers.js';
export * from './module.js';
export * from './optim.js';
export * from './parameter.js';
export * from './schedule.js';
