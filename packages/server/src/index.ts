/**
 * `@parley/server`: the Parley relay. It stores and forwards ciphertext only
 * and never holds a user's private key or plaintext.
 *
 * @module
 */
export { startServer, type RunningServer, type StartOptions } from './server.ts';
export { resolveConfig, type ServerConfig, type ConfigInput } from './config.ts';
export * as limits from './limits.ts';
export { TUTORIAL_DEMO_PUBLIC_KEY_B64 } from './server-key.ts';
