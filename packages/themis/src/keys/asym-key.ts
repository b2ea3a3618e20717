/**
 * Key-kind detection and parsing of any Themis asymmetric key container into
 * a typed form. Kind comes from the first three tag bytes, as in
 * `themis_get_asym_key_kind`; validation is stricter than Themis (the point or
 * the RSA parts must be consistent, not only the CRC and length).
 *
 * @module
 */
import { ThemisError, type Subsystem } from '../errors.ts';
import { readEcPrivateKey, readEcPublicKey, type EcPrivateKey, type EcPublicKey } from './ec-key.ts';
import { readRsaPrivateKey, readRsaPublicKey, type RsaPrivateKey, type RsaPublicKey } from './rsa-key.ts';

export type KeyKind = 'ec-private' | 'ec-public' | 'rsa-private' | 'rsa-public';
export type ParsedPrivateKey = EcPrivateKey | RsaPrivateKey;
export type ParsedPublicKey = EcPublicKey | RsaPublicKey;
export type ParsedKey = ParsedPrivateKey | ParsedPublicKey;

/** Kind from the tag prefix, or null if unknown or too short. No validation. */
export function keyKindOf(bytes: Uint8Array): KeyKind | null {
  if (bytes.length < 12) return null;
  const p = String.fromCharCode(bytes[0] as number, bytes[1] as number, bytes[2] as number);
  switch (p) {
    case 'REC':
      return 'ec-private';
    case 'UEC':
      return 'ec-public';
    case 'RRA':
      return 'rsa-private';
    case 'URA':
      return 'rsa-public';
    default:
      return null;
  }
}

export function parsePrivateKey(subsystem: Subsystem, bytes: Uint8Array): ParsedPrivateKey {
  const kind = keyKindOf(bytes);
  if (kind === 'ec-private') return readEcPrivateKey(subsystem, bytes);
  if (kind === 'rsa-private') return readRsaPrivateKey(subsystem, bytes);
  if (kind === 'ec-public' || kind === 'rsa-public') throw new ThemisError(subsystem, 'WRONG_KEY_KIND', 'expected a private key, got a public key');
  throw new ThemisError(subsystem, 'INVALID_KEY', 'not a Themis private key');
}

export function parsePublicKey(subsystem: Subsystem, bytes: Uint8Array): ParsedPublicKey {
  const kind = keyKindOf(bytes);
  if (kind === 'ec-public') return readEcPublicKey(subsystem, bytes);
  if (kind === 'rsa-public') return readRsaPublicKey(subsystem, bytes);
  if (kind === 'ec-private' || kind === 'rsa-private') throw new ThemisError(subsystem, 'WRONG_KEY_KIND', 'expected a public key, got a private key');
  throw new ThemisError(subsystem, 'INVALID_KEY', 'not a Themis public key');
}

/** Best-effort wipe of a parsed private key's secret parts. */
export function wipeParsedKey(k: ParsedKey): void {
  if (k.kind === 'ec-private') k.d.fill(0);
  else if (k.kind === 'rsa-private') for (const v of Object.values(k.c)) v.fill(0);
}
