import { defineConfig } from 'tsup';
import { tsupBase } from '../../tsup.base';

// shims: the CommonJS build gets import.meta.url, which finds the application's knex and loads TypeScript migrations.
export default defineConfig({ ...tsupBase, shims: true });
