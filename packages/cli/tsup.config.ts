import { defineConfig } from 'tsup';
import { tsupBase } from '../../tsup.base';

// Two builds into one dist: neither may clean it, or it would delete what the other wrote.
export default defineConfig([
  // The library side: defineConfig and its types, for phaseflag.config.ts files.
  { ...tsupBase, clean: false },
  {
    // The binary: ESM only, with a shebang, so `npx phaseflag` runs it as is.
    ...tsupBase,
    entry: { cli: 'src/cli.ts' },
    format: ['esm'],
    dts: false,
    clean: false,
    banner: { js: '#!/usr/bin/env node' },
  },
]);
