/**
 * Saved Secure Session state, Themis's `TSSC` layout (C `secure_session_save`).
 * Local state, never sent; it holds the master key, so callers must store it
 * sealed (e.g. with Secure Cell) and never in clear.
 *
 * ```
 * "TSSC" | size=60 | crc | sid u32 BE | is_client u32 BE | master key (32) | out_seq u32 BE | in_seq u32 BE
 * ```
 *
 * @module
 */
import { readU32BE, writeU32BE } from '../_bytes.ts';
import { readContainer, writeContainer } from '../soter/container.ts';

export const SAVED_STATE_TAG = 'TSSC';
const PAYLOAD_LENGTH = 48;

export interface SavedState {
  sessionId: number;
  isClient: boolean;
  masterKey: Uint8Array;
  outSeq: number;
  inSeq: number;
}

export function writeSavedState(s: SavedState): Uint8Array {
  const p = new Uint8Array(PAYLOAD_LENGTH);
  writeU32BE(p, 0, s.sessionId);
  writeU32BE(p, 4, s.isClient ? 1 : 0);
  p.set(s.masterKey, 8);
  writeU32BE(p, 40, s.outSeq);
  writeU32BE(p, 44, s.inSeq);
  const out = writeContainer(SAVED_STATE_TAG, p);
  p.fill(0);
  return out;
}

export function readSavedState(buf: Uint8Array): SavedState | null {
  const c = readContainer(buf, true);
  if (c === null || c.tag !== SAVED_STATE_TAG || c.payload.length !== PAYLOAD_LENGTH) return null;
  const p = c.payload;
  const isClient = readU32BE(p, 4);
  if (isClient > 1) return null;
  return {
    sessionId: readU32BE(p, 0),
    isClient: isClient === 1,
    masterKey: p.slice(8, 40),
    outSeq: readU32BE(p, 40),
    inSeq: readU32BE(p, 44),
  };
}
