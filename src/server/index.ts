export { type Access, createServer, SESSION_COOKIE, type ServerOptions } from './app.js';
export * from './auth.js';
export * from './chat.js';
export { REPORT_CSP } from './report.js';
export * from './sampler.js';
export * from './sampler_pool.js';
export * from './schemas.js';
export { type ServeOptions, serve } from './serve.js';
export { APP_CSP, defaultWebRoot } from './static.js';
