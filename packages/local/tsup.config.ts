import { defineConfig } from 'tsup';
import { tsupBase } from '../../tsup.base';

export default defineConfig({
  ...tsupBase,
  entry: ['src/index.ts', 'src/internal.ts'],
  // src/embedded-binaries.ts resolves packages from import.meta.url, which the CJS build must shim.
  shims: true,
});
