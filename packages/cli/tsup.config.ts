import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The library side: defineConfig and its types, for phaseflag.config.ts files.
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: false,
    target: 'node20',
  },
  {
    // The binary: ESM only, with a shebang, so `npx phaseflag` runs it as is.
    entry: { cli: 'src/cli.ts' },
    format: ['esm'],
    sourcemap: true,
    clean: false,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
  },
]);
