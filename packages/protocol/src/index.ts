/**
 * `@parley/protocol`: end-to-end encryption for 1:1 conversations between
 * devices — PQXDH (X25519 + ML-KEM-1024) to start a session, the Double
 * Ratchet for every message, sealed session storage, and a multi-device
 * layer on top. Synchronous, pure, and the same in browsers and Node.
 *
 * @example
 * ```ts
 * import { IdentityKeyPair, SignedPrekey, PqPrekey, makePrekeyBundle, Session } from '@parley/protocol';
 * const bob = IdentityKeyPair.generate();
 * const spk = SignedPrekey.generate(bob, 1), pq = PqPrekey.generate(bob, 1);
 * const alice = IdentityKeyPair.generate();
 * const session = Session.initiate(alice, makePrekeyBundle(bob, spk, null, pq),
 *   { userId: 'alice', deviceId: 'laptop' }, { userId: 'bob', deviceId: 'phone' });
 * const envelope = session.encrypt(new TextEncoder().encode('hi'));
 * ```
 *
 * @module
 */
export { ProtocolError, type ProtocolErrorCode } from './errors.ts';
export * as limits from './limits.ts';
export { type DeviceAddress } from './address.ts';
export { IdentityKeyPair, IDENTITY_KEY_LENGTH, SIGNATURE_LENGTH, verifyIdentitySignature } from './identity.ts';
export { KEM_CIPHERTEXT_LENGTH, KEM_PUBLIC_KEY_LENGTH } from './kem.ts';
export {
  SignedPrekey,
  OneTimePrekey,
  PqPrekey,
  makePrekeyBundle,
  verifyPrekeyBundle,
  signedPrekeyMessage,
  pqPrekeyMessage,
  type PrekeyBundle,
  type SignedPrekeyPublic,
  type OneTimePrekeyPublic,
  type PqPrekeyPublic,
} from './prekeys.ts';
export { PQXDH_INFO, type PrekeyMessageFields } from './pqxdh.ts';
export { isPrekeyMessage, ENVELOPE_VERSION } from './envelope.ts';
export { Session, type DecryptOptions } from './session.ts';
export { SEALING_KEY_LENGTH } from './session-state.ts';
export {
  InMemoryIdentityStore,
  InMemoryPrekeyStore,
  InMemorySessionStore,
  type IdentityStore,
  type PrekeyStore,
  type SessionStore,
} from './stores.ts';
export { encryptForDevices, decryptFromDevice, type ProtocolStores, type DeviceTarget, type DeviceEnvelope } from './multi-device.ts';
