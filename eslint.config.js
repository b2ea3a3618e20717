// Lint rules shared by every package. Type-checking itself is `tsc -b`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'data/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Library code: no console, no Node's global Buffer (it must run in browsers).
    files: ['packages/themis/src/**/*.ts', 'packages/protocol/src/**/*.ts', 'packages/sdk/src/**/*.ts'],
    ignores: ['packages/themis/src/backend/node.ts'],
    rules: {
      'no-console': 'error',
      'no-restricted-globals': ['error', { name: 'Buffer', message: 'use Uint8Array; Buffer does not exist in browsers' }],
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*'], message: 'only backend/node.ts may import Node built-ins' }] }],
    },
  },
  {
    // The SQLite store is Node-only (better-sqlite3, never in the browser bundle): it may read a file's header.
    files: ['packages/sdk/src/sqlite-store.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['node:*', '!node:fs'], message: 'only node:fs, for the file header check' }] }] },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    rules: { '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }] },
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', globalThis: 'readonly', performance: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly' } },
  },
);
