/**
 * Low-level pieces of Themis for tests, tools and other Parley packages.
 * Misusing them can break security; application code should not need them.
 *
 * @module
 */
export { soterKdf } from './soter/kdf.ts';
export { crc32c } from './soter/crc32c.ts';
export { readContainer, writeContainer, type Container } from './soter/container.ts';
export { encryptWithPassphraseIterations } from './cell/seal-passphrase.ts';
export { keyKindOf, parsePrivateKey, parsePublicKey, type ParsedPrivateKey, type ParsedPublicKey } from './keys/asym-key.ts';
export { concatBytes, copyBytes, equalBytes, wipe } from './_bytes.ts';
export * as limits from './limits.ts';
export { backend } from '#backend';
export type { Backend } from './backend/types.ts';
