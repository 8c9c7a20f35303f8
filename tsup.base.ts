import type { Options } from 'tsup';

/**
 * How every package builds: src/index.ts as ESM and CJS, with type declarations for both and source maps, for
 * Node 20. Each packages/<name>/tsup.config.ts spreads it and adds only what is its own.
 */
export const tsupBase = {
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
} satisfies Options;
