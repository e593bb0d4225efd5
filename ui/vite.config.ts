// Vite builds the UI into dist/, which `sdlab serve` serves. Everything is bundled locally
// (Monaco and its worker included): the page never loads anything from outside 127.0.0.1.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 8000,
  },
  worker: { format: 'es' },
});
