// Lint for the whole repository: typescript-eslint's type-checked rules over every package's src and test, the
// examples, the cross-package suites, the bench and the scripts. Type information comes from each folder's own
// tsconfig.json (projectService), so the workspace packages must be built first (`npm run lint` does that): a file
// that imports @phaseflag/core sees the types of its dist/index.d.ts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Suites and the bench probe raw rows and parsed --json output ad hoc; there the `any` is the point.
const probes = ['packages/*/test/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'];

export default tseslint.config(
  {
    // What .gitignore leaves out (builds, run data), and the build configs, which no tsconfig includes.
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/.turbo/**',
      '.phaseflag/**',
      'bench/.data/**',
      'test/.work-*/**',
      '.scratch/**',
      'packages/*/tsup.config.ts',
    ],
  },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // The promise rules, on everywhere, tests included: a promise nobody awaits is a failure nobody sees.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // `return promise()` inside a try whose finally closes a session closes it before the promise settles.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],

      // Off: knex types every row it returns as `any` (raw(), first(), returning()), and so does express's
      // req.body; the code reads a column and converts it where it uses it (Number(row.n), `as T`). Flagging every
      // such read and every `const row = await knex...` is noise. no-unsafe-call, -argument and -return stay on in
      // src: calling an `any`, passing one on or returning one from a typed function is where it leaks.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      // Off: every finding was a value declared `unknown` that TypeScript narrowed to `{}` (by `??`, a truthiness
      // or `!== undefined` test), which the rule takes for a plain object; String() of unknown data is deliberate.
      '@typescript-eslint/no-base-to-string': 'off',
      // Rethrowing a caught value kept for later (`failure = { error }` ... `throw failure.error`, typed unknown) is
      // not a new throw.
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingUnknown: true }],
      // Off: an `async` function without `await` is how this code implements a Promise-returning interface
      // (a storage provider's get/set, a step's no-op rollback) so that a throw becomes a rejection.
      '@typescript-eslint/require-await': 'off',
      // A leading underscore marks a parameter a signature needs (express's 4-argument error handler) and a
      // property taken out of an object to drop it.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: probes,
    rules: {
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.mjs'],
    extends: [js.configs.recommended],
  },
);
