/**
 * The Double Ratchet (Signal, "The Double Ratchet Algorithm", revision 4,
 * §3.2–3.5), over X25519, the KDFs of `ratchet-kdf.ts` and the AEAD of
 * `message-cipher.ts`, initialised from PQXDH as in §7.1.
 *
 * One addition to the spec: every header carries a 16-byte tag under the
 * sending chain's header key. Without it, the limits below would have to be
 * judged on a header nobody has authenticated yet — so flipping one bit of N
 * would turn "tampered" into "too far ahead" or "replayed", and an error code
 * would tell an attacker which. With it, `TOO_MANY_SKIPPED` and `DUPLICATE`
 * are only ever reported for a header the peer really sent; anything else is
 * `DECRYPT_FAILED`. The message AEAD still covers the whole header, as in the
 * spec, so the tag adds detection, not a weaker path.
 *
 * Skipped message keys are kept keyed by (ratchet key, N), at most MAX_SKIP
 * per jump and SKIPPED_KEYS_MAX per state, oldest evicted first (see
 * limits.ts for why eviction rather than refusal). Message keys are deleted
 * once used. Functions here mutate the state they are given; the session
 * runs decryption on a copy and keeps it only on success, so a failed
 * decryption leaves the session exactly as it was.
 *
 * @module
 */
import { backend, equalBytes, wipe } from '@parley/themis/hazmat';
import { concatBytes, copyBytes, lengthPrefixed, toHex } from './_bytes.ts';
import { decryptFailed, ProtocolError } from './errors.ts';
import { HEADER_TAG_LENGTH, writeEnvelope, writeEnvelopeHead, type DecodedEnvelope, type MessageHeader } from './envelope.ts';
import { CHAIN_LENGTH_MAX, MAX_SKIP, PREVIOUS_CHAINS_MAX, SKIPPED_KEYS_MAX } from './limits.ts';
import { decryptMessage, encryptMessage } from './message-cipher.ts';
import type { PrekeyMessageFields } from './pqxdh.ts';
import { headerKey, kdfChainKey, kdfRootKey } from './ratchet-kdf.ts';

export interface SendingChain {
  chainKey: Uint8Array;
  headerKey: Uint8Array;
  /** Ns: the number of the next message. */
  index: number;
}

export interface ReceivingChain {
  /** DHr: the peer's ratchet key this chain belongs to. */
  readonly ratchetKey: Uint8Array;
  chainKey: Uint8Array;
  readonly headerKey: Uint8Array;
  /** Nr: the number of the next message expected. */
  index: number;
}

/** A receiving chain we have moved past, remembered only to recognise replays. */
export interface ClosedChain {
  readonly ratchetKey: Uint8Array;
  readonly headerKey: Uint8Array;
}

export interface SkippedKey {
  readonly ratchetKey: Uint8Array;
  readonly messageNumber: number;
  readonly messageKey: Uint8Array;
}

export interface RatchetState {
  /** RK */
  rootKey: Uint8Array;
  /** DHs, private and public halves. */
  ratchetPrivate: Uint8Array;
  ratchetPublic: Uint8Array;
  /** DHr, or null before the first message from the peer (responder side). */
  remoteRatchetKey: Uint8Array | null;
  /**
   * CKs; null after a DH ratchet step's receiving half until the next
   * encryption runs its sending half (and on the responder's side until its
   * first message from the initiator, when DHr is null too).
   */
  sending: SendingChain | null;
  /** CKr; null until the first message from the peer. */
  receiving: ReceivingChain | null;
  /** PN */
  previousSendingLength: number;
  /** Oldest first, at most PREVIOUS_CHAINS_MAX. */
  closedChains: ClosedChain[];
  /** MKSKIPPED in insertion order (oldest first), at most SKIPPED_KEYS_MAX. */
  skipped: Map<string, SkippedKey>;
}

export function skippedKeyId(ratchetKey: Uint8Array, messageNumber: number): string {
  return `${toHex(ratchetKey)}:${messageNumber}`;
}

/** RatchetInitAlice (§3.3): DHr is the responder's signed prekey. */
export function initInitiator(sharedSecret: Uint8Array, remoteSignedPrekey: Uint8Array): RatchetState {
  const ratchetPrivate = backend.x25519GeneratePrivate();
  const dh = backend.x25519(ratchetPrivate, remoteSignedPrekey);
  if (dh === null) throw new ProtocolError('MALFORMED', 'signed prekey has low order');
  const { rootKey, chainKey } = kdfRootKey(sharedSecret, dh);
  wipe(dh);
  return {
    rootKey,
    ratchetPrivate,
    ratchetPublic: backend.x25519PublicFromPrivate(ratchetPrivate),
    remoteRatchetKey: copyBytes(remoteSignedPrekey),
    sending: { chainKey, headerKey: headerKey(chainKey), index: 0 },
    receiving: null,
    previousSendingLength: 0,
    closedChains: [],
    skipped: new Map(),
  };
}

/**
 * RatchetInitBob (§3.3): the signed prekey pair is the first ratchet key
 * pair. The state takes ownership of `signedPrekeyPrivate` (a copy made for
 * it: see SignedPrekey.exportPrivateKey) and wipes it when it moves on.
 */
export function initResponder(sharedSecret: Uint8Array, signedPrekeyPrivate: Uint8Array, signedPrekeyPublic: Uint8Array): RatchetState {
  return {
    rootKey: copyBytes(sharedSecret),
    ratchetPrivate: signedPrekeyPrivate,
    ratchetPublic: copyBytes(signedPrekeyPublic),
    remoteRatchetKey: null,
    sending: null,
    receiving: null,
    previousSendingLength: 0,
    closedChains: [],
    skipped: new Map(),
  };
}

/**
 * A copy to try a decryption on. Every secret is copied except the ratchet
 * private key, which is shared: a DH step replaces it rather than writing
 * to it, and sharing it keeps the backend's key-object cache warm (a fresh
 * copy would cost OpenSSL a key import on every message). Whoever drops one
 * of the two states passes the other as `keep` to `wipeRatchet`.
 */
export function cloneRatchet(s: RatchetState): RatchetState {
  const skipped = new Map<string, SkippedKey>();
  for (const [id, k] of s.skipped) skipped.set(id, { ratchetKey: k.ratchetKey, messageNumber: k.messageNumber, messageKey: copyBytes(k.messageKey) });
  return {
    rootKey: copyBytes(s.rootKey),
    ratchetPrivate: s.ratchetPrivate,
    ratchetPublic: s.ratchetPublic,
    remoteRatchetKey: s.remoteRatchetKey,
    sending: s.sending === null ? null : { chainKey: copyBytes(s.sending.chainKey), headerKey: copyBytes(s.sending.headerKey), index: s.sending.index },
    receiving:
      s.receiving === null
        ? null
        : { ratchetKey: s.receiving.ratchetKey, chainKey: copyBytes(s.receiving.chainKey), headerKey: copyBytes(s.receiving.headerKey), index: s.receiving.index },
    previousSendingLength: s.previousSendingLength,
    closedChains: s.closedChains.map((c) => ({ ratchetKey: c.ratchetKey, headerKey: copyBytes(c.headerKey) })),
    skipped,
  };
}

/**
 * Wipe every secret of a state that is being dropped. Public keys are shared
 * between a state and its clones (they are never written to), and so is the
 * ratchet private key until a DH step replaces it: it is left alone when
 * `keep` (the state that lives on) still holds it.
 */
export function wipeRatchet(s: RatchetState, keep?: RatchetState): void {
  wipe(s.rootKey, s.sending?.chainKey, s.sending?.headerKey, s.receiving?.chainKey, s.receiving?.headerKey);
  if (keep === undefined || keep.ratchetPrivate !== s.ratchetPrivate) wipe(s.ratchetPrivate);
  for (const c of s.closedChains) wipe(c.headerKey);
  for (const k of s.skipped.values()) wipe(k.messageKey);
  s.skipped.clear();
}

function headerTag(key: Uint8Array, ad: Uint8Array, head: Uint8Array): Uint8Array {
  return backend.hmacSha256(key, [lengthPrefixed(ad), head]).subarray(0, HEADER_TAG_LENGTH);
}

function headerAuthentic(key: Uint8Array, ad: Uint8Array, env: DecodedEnvelope): boolean {
  return equalBytes(headerTag(key, ad, env.head), env.headerTag);
}

function cipherAd(ad: Uint8Array, callerAd: Uint8Array, authenticated: Uint8Array): Uint8Array {
  return concatBytes(lengthPrefixed(ad), lengthPrefixed(callerAd), authenticated);
}

/** RatchetEncrypt (§3.4). Throws `INVALID_STATE` before the responder has received anything. */
export function ratchetEncrypt(s: RatchetState, prekey: PrekeyMessageFields | null, ad: Uint8Array, callerAd: Uint8Array, plaintext: Uint8Array): Uint8Array {
  let chain = s.sending;
  if (chain === null) {
    if (s.remoteRatchetKey === null) throw new ProtocolError('INVALID_STATE', 'the responder cannot send before it has received a message');
    chain = startSendingChain(s, s.remoteRatchetKey);
  }
  if (chain.index >= CHAIN_LENGTH_MAX) throw new ProtocolError('LIMIT', 'sending chain exhausted; the peer must reply first');
  const header: MessageHeader = { ratchetKey: s.ratchetPublic, previousChainLength: s.previousSendingLength, messageNumber: chain.index };
  const head = writeEnvelopeHead(prekey, header);
  const tag = headerTag(chain.headerKey, ad, head);
  const { chainKey, messageKey } = kdfChainKey(chain.chainKey);
  const ciphertext = encryptMessage(messageKey, plaintext, cipherAd(ad, callerAd, concatBytes(head, tag)));
  wipe(messageKey, chain.chainKey);
  chain.chainKey = chainKey;
  chain.index++;
  return writeEnvelope(head, tag, ciphertext);
}

/** SkipMessageKeys (§3.5) for `chain` up to `until`, then evict down to SKIPPED_KEYS_MAX. */
function skipMessageKeys(s: RatchetState, chain: ReceivingChain, until: number): void {
  while (chain.index < until) {
    const { chainKey, messageKey } = kdfChainKey(chain.chainKey);
    s.skipped.set(skippedKeyId(chain.ratchetKey, chain.index), { ratchetKey: chain.ratchetKey, messageNumber: chain.index, messageKey });
    wipe(chain.chainKey);
    chain.chainKey = chainKey;
    chain.index++;
  }
  for (const [id, key] of s.skipped) {
    if (s.skipped.size <= SKIPPED_KEYS_MAX) break;
    wipe(key.messageKey);
    s.skipped.delete(id);
  }
}

function closeChain(s: RatchetState, chain: ReceivingChain): void {
  wipe(chain.chainKey);
  s.closedChains.push({ ratchetKey: chain.ratchetKey, headerKey: chain.headerKey });
  while (s.closedChains.length > PREVIOUS_CHAINS_MAX) wipe(s.closedChains.shift()?.headerKey);
}

function tooManySkipped(): ProtocolError {
  return new ProtocolError('TOO_MANY_SKIPPED', `message is more than ${MAX_SKIP} messages ahead of its chain`);
}
function duplicate(): ProtocolError {
  return new ProtocolError('DUPLICATE', 'message already decrypted (or its key was discarded)');
}

/**
 * DHRatchet (§3.5), receiving half, for an authenticated header with a new
 * ratchet key: close the current receiving chain at PN and install the new
 * one. The sending half (a new ratchet key pair and sending chain) is left to
 * the next `ratchetEncrypt` — as libolm and vodozemac do — so a device that
 * only reads (a user's other devices, most first messages) never pays for a
 * key pair it would not use. The secrets held in between are the ones the
 * spec holds (RK after the receiving half, the current DHs), and the next
 * message sent carries a fresh ratchet key exactly as in the spec.
 */
function dhRatchetStep(s: RatchetState, header: MessageHeader, rootKey: Uint8Array, receiving: ReceivingChain): void {
  if (s.receiving !== null) {
    skipMessageKeys(s, s.receiving, header.previousChainLength);
    closeChain(s, s.receiving);
  }
  s.previousSendingLength = s.sending?.index ?? 0;
  wipe(s.rootKey, s.sending?.chainKey, s.sending?.headerKey);
  s.remoteRatchetKey = header.ratchetKey;
  s.receiving = receiving;
  s.rootKey = rootKey;
  s.sending = null;
}

/**
 * DHRatchet (§3.5), sending half, run by the first encryption after a
 * receiving half: a new ratchet key pair and, from DH(DHs, DHr), the new
 * sending chain.
 */
function startSendingChain(s: RatchetState, remoteRatchetKey: Uint8Array): SendingChain {
  // No state shares the old private key any more (a decryption's trial state
  // replaced the one it was cloned from), so it can be wiped here.
  wipe(s.ratchetPrivate);
  s.ratchetPrivate = backend.x25519GeneratePrivate();
  s.ratchetPublic = backend.x25519PublicFromPrivate(s.ratchetPrivate);
  const dh = backend.x25519(s.ratchetPrivate, remoteRatchetKey);
  // DHr gave a non-zero result with the previous private key, so it is not of low order.
  if (dh === null) throw new ProtocolError('INTERNAL', 'X25519 failed on a key it accepted');
  const next = kdfRootKey(s.rootKey, dh);
  wipe(dh, s.rootKey);
  s.rootKey = next.rootKey;
  const chain = { chainKey: next.chainKey, headerKey: headerKey(next.chainKey), index: 0 };
  s.sending = chain;
  return chain;
}

/**
 * RatchetDecrypt (§3.5) on `s`, which the caller must discard if this throws.
 * Throws `DECRYPT_FAILED`, or — only for an authentic header —
 * `TOO_MANY_SKIPPED` or `DUPLICATE`.
 */
export function ratchetDecrypt(s: RatchetState, env: DecodedEnvelope, ad: Uint8Array, callerAd: Uint8Array): Uint8Array {
  const h = env.header;
  const aead = cipherAd(ad, callerAd, env.authenticated);

  // TrySkippedMessageKeys
  const id = skippedKeyId(h.ratchetKey, h.messageNumber);
  const skipped = s.skipped.get(id);
  if (skipped !== undefined) {
    const plaintext = decryptMessage(skipped.messageKey, env.ciphertext, aead);
    if (plaintext === null) throw decryptFailed();
    s.skipped.delete(id);
    wipe(skipped.messageKey);
    return plaintext;
  }

  if (s.receiving !== null && equalBytes(h.ratchetKey, s.receiving.ratchetKey)) {
    if (!headerAuthentic(s.receiving.headerKey, ad, env)) throw decryptFailed();
    if (h.messageNumber < s.receiving.index) throw duplicate();
    if (h.messageNumber - s.receiving.index > MAX_SKIP) throw tooManySkipped();
  } else {
    const closed = s.closedChains.find((c) => equalBytes(c.ratchetKey, h.ratchetKey));
    if (closed !== undefined) {
      if (!headerAuthentic(closed.headerKey, ad, env)) throw decryptFailed();
      throw duplicate();
    }
    const dh = backend.x25519(s.ratchetPrivate, h.ratchetKey);
    if (dh === null) throw decryptFailed();
    const { rootKey, chainKey } = kdfRootKey(s.rootKey, dh);
    wipe(dh);
    const receiving: ReceivingChain = { ratchetKey: h.ratchetKey, chainKey, headerKey: headerKey(chainKey), index: 0 };
    const pending = s.receiving;
    const gap = pending === null ? 0 : h.previousChainLength - pending.index;
    const authentic = headerAuthentic(receiving.headerKey, ad, env);
    if (!authentic || gap > MAX_SKIP || h.messageNumber > MAX_SKIP) {
      wipe(rootKey, receiving.chainKey, receiving.headerKey);
      throw authentic ? tooManySkipped() : decryptFailed();
    }
    dhRatchetStep(s, h, rootKey, receiving);
  }

  const chain = s.receiving;
  if (chain === null) throw new ProtocolError('INTERNAL', 'no receiving chain after a ratchet step');
  skipMessageKeys(s, chain, h.messageNumber);
  const { chainKey, messageKey } = kdfChainKey(chain.chainKey);
  wipe(chain.chainKey);
  chain.chainKey = chainKey;
  chain.index++;
  const plaintext = decryptMessage(messageKey, env.ciphertext, aead);
  wipe(messageKey);
  if (plaintext === null) throw decryptFailed();
  return plaintext;
}
