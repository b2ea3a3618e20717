/**
 * `@parley/themis`: the Themis cryptosystems in TypeScript, byte-compatible
 * with Themis 0.15 on every platform, synchronous, with the class and method
 * names of `wasm-themis` — code written for `wasm-themis` runs by changing its
 * import.
 *
 * @example
 * ```ts
 * import { SecureCellSeal, SymmetricKey } from '@parley/themis';
 * const cell = SecureCellSeal.withKey(new SymmetricKey());
 * const sealed = cell.encrypt(new TextEncoder().encode('hi'));
 * ```
 *
 * @module
 */
import { backend } from '#backend';
import { KeyPair, PrivateKey, PublicKey, SymmetricKey } from './keys/key-classes.ts';
import { SecureCellSeal } from './cell/seal.ts';
import { SecureCellSealWithPassphrase } from './cell/seal-passphrase.ts';
import { SecureCellTokenProtect } from './cell/token-protect.ts';
import { SecureCellContextImprint } from './cell/context-imprint.ts';
import { SecureMessage } from './message/secure-message.ts';
import { SecureMessageSign, SecureMessageVerify } from './message/sign.ts';
import { ThemisError, ThemisErrorCode } from './errors.ts';
import { SecureSession } from './session/secure-session.ts';
import { SecureComparator } from './comparator/secure-comparator.ts';

export { KeyPair, PrivateKey, PublicKey, SymmetricKey };
export { SecureCellSeal, SecureCellSealWithPassphrase, SecureCellTokenProtect, SecureCellContextImprint };
export { SecureMessage, SecureMessageSign, SecureMessageVerify };
export { ThemisError, ThemisErrorCode };
export { SecureSession, SecureComparator };
export type { KeyCallback, SecureSessionOptions, SessionState, ReceiveResult } from './session/secure-session.ts';
export type { ReplayMode } from './session/replay-window.ts';
export type { ThemisErrorCodeName, Subsystem } from './errors.ts';
export type { CellCompatOptions } from './cell/seal.ts';
export type { KeyKind } from './keys/asym-key.ts';

/**
 * Already resolved: nothing to load. Present so that `await themis.initialized`
 * in code written for `wasm-themis` keeps working.
 */
export const initialized: Promise<void> = Promise.resolve();

/** No-op counterpart of `wasm-themis`'s `initialize(wasmPath?)`. */
export function initialize(_wasmPath?: string): Promise<void> {
  return initialized;
}

/** Which primitives backend is in use: `node` (node:crypto) or `noble` (pure JS). */
export const backendName: 'node' | 'noble' = backend.name;

export default {
  initialize,
  initialized,
  SecureCellSeal,
  SecureCellTokenProtect,
  SecureCellContextImprint,
  SecureMessage,
  SecureMessageSign,
  SecureMessageVerify,
  SecureSession,
  SecureComparator,
  ThemisError,
  ThemisErrorCode,
  SymmetricKey,
  KeyPair,
  PrivateKey,
  PublicKey,
};
