import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // src/database/embedded-binaries.ts resolves packages from import.meta.url, which the CJS build must shim.
  shims: true,
});
