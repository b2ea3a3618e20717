/**
 * Secure Session key schedule (wire-format spec §5.6).
 *
 * ```
 * sidRaw = SoterKDF(implicit, "Themis secure session unique identifier", [Ec, Es, IDc, IDs], 4)
 * mk     = SoterKDF(ECDH(eph, peer eph), "Themis secure session master key", [sidRaw], 32)
 * kC→S   = SoterKDF(mk, "Themis secure session client key", [sidRaw], 32)
 * kS→C   = SoterKDF(mk, "Themis secure session server key", [sidRaw], 32)
 * seqC   = u32le(SoterKDF(mk, "Themis secure session client initial sequence number", [sidRaw], 4))
 * seqS   = u32le(SoterKDF(mk, "Themis secure session server initial sequence number", [sidRaw], 4))
 * wire session id = u32be of sidRaw reversed, i.e. the u32le value of sidRaw
 * ```
 *
 * @module
 */
import { readU32LE, writeU32LE } from '../_bytes.ts';
import { soterKdf } from '../soter/kdf.ts';

export function deriveSidRaw(ec: Uint8Array, es: Uint8Array, idc: Uint8Array, ids: Uint8Array): Uint8Array {
  return soterKdf(null, 'Themis secure session unique identifier', [ec, es, idc, ids], 4);
}

export function deriveMasterKey(shared: Uint8Array, sidRaw: Uint8Array): Uint8Array {
  return soterKdf(shared, 'Themis secure session master key', [sidRaw], 32);
}

/** The session id value carried (big-endian) on the wire. */
export function sessionIdFromRaw(sidRaw: Uint8Array): number {
  return readU32LE(sidRaw, 0);
}

export function sidRawFromSessionId(id: number): Uint8Array {
  const b = new Uint8Array(4);
  writeU32LE(b, 0, id);
  return b;
}

export interface SessionKeys {
  /** Key for what the client sends and the server receives. */
  clientKey: Uint8Array;
  serverKey: Uint8Array;
  clientSeq: number;
  serverSeq: number;
}

export function deriveSessionKeys(masterKey: Uint8Array, sidRaw: Uint8Array): SessionKeys {
  return {
    clientKey: soterKdf(masterKey, 'Themis secure session client key', [sidRaw], 32),
    serverKey: soterKdf(masterKey, 'Themis secure session server key', [sidRaw], 32),
    clientSeq: readU32LE(soterKdf(masterKey, 'Themis secure session client initial sequence number', [sidRaw], 4), 0),
    serverSeq: readU32LE(soterKdf(masterKey, 'Themis secure session server initial sequence number', [sidRaw], 4), 0),
  };
}
