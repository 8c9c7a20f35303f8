import { defineConfig } from 'tsup';
import { tsupBase } from '../../tsup.base';

// Two entries: the public API, and the internal one the CLI and the tests use (documented as unstable).
export default defineConfig({ ...tsupBase, entry: ['src/index.ts', 'src/internal.ts'] });
