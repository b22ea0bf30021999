import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The UI is served by the Fastify API server (src/server/static.ts); `vite` dev proxies /api to it.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, target: 'es2022', modulePreload: { polyfill: false } },
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
