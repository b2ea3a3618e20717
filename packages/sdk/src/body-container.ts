/**
 * The body of a room message: one envelope per recipient device, in one
 * container, so a message is ONE room entry (one `seq`, one `clientId`)
 * however many devices read it. The server stores and relays the container
 * as opaque bytes; it sees how many devices a message is for and their
 * addresses (it knows them anyway: it routes to them), never a plaintext.
 *
 * All integers big-endian.
 *
 * ```
 *  offset   size  field
 *  0        1     version = 0x01
 *  1        2     n: number of entries, u16be, 1 … CONTAINER_ENTRIES_MAX
 *  ── n entries, each ──────────────────────────────────────────────────────
 *  +0       1     u: length of userId in bytes, 1 … 64
 *  +1       u     userId (UTF-8; ASCII under the server's id rules)
 *  +1+u     1     d: length of deviceId in bytes, 1 … 64
 *  +2+u     d     deviceId
 *  +2+u+d   4     e: length of the envelope, u32be, 1 … ENVELOPE_BYTES_MAX
 *  +6+u+d   e     envelope (packages/protocol/README.md, "Wire format")
 *  ── nothing may follow the last entry ────────────────────────────────────
 * ```
 *
 * An address appears at most once. The container is not authenticated by
 * itself: each envelope is (its associated data binds both device
 * addresses, and the SDK adds the room id), so a relay that swaps, copies
 * or moves envelopes only makes them fail to decrypt.
 *
 * Parsing is bounded: the input is refused above BODY_BYTES_MAX before any
 * work, the entry count is checked before the loop, and every read checks
 * the remaining length first (one pass, no allocation but the entry list).
 *
 * @module
 */
import { limits as protocolLimits, type DeviceAddress } from '@parley/protocol';
import { ByteReader, ByteWriter, fromUtf8, utf8 } from './_bytes.ts';
import { SdkError } from './errors.ts';
import { BODY_BYTES_MAX, CONTAINER_ENTRIES_MAX, ID_LENGTH_MAX } from './limits.ts';

export const CONTAINER_VERSION = 0x01;

/** Bytes an entry adds besides its two ids and its envelope. */
export const ENTRY_FRAMING_BYTES = 1 + 1 + 4;
/** Bytes the container adds besides its entries. */
export const CONTAINER_FRAMING_BYTES = 1 + 2;

export interface ContainerEntry extends DeviceAddress {
  readonly envelope: Uint8Array;
}

function idBytes(id: string, what: string): Uint8Array {
  const b = utf8(id);
  if (b.length === 0 || b.length > ID_LENGTH_MAX) throw new SdkError('INVALID_ARGUMENT', `${what} must be 1…${ID_LENGTH_MAX} bytes`);
  return b;
}

/** Write a container; entries must have distinct addresses and non-empty envelopes. */
export function encodeContainer(entries: readonly ContainerEntry[]): Uint8Array {
  if (entries.length === 0 || entries.length > CONTAINER_ENTRIES_MAX) throw new SdkError('INVALID_ARGUMENT', `a container holds 1…${CONTAINER_ENTRIES_MAX} entries`);
  const seen = new Set<string>();
  const w = new ByteWriter().u8(CONTAINER_VERSION).u16be(entries.length);
  for (const e of entries) {
    const key = JSON.stringify([e.userId, e.deviceId]);
    if (seen.has(key)) throw new SdkError('INVALID_ARGUMENT', `two envelopes for ${e.userId}/${e.deviceId}`);
    seen.add(key);
    if (e.envelope.length === 0 || e.envelope.length > protocolLimits.ENVELOPE_BYTES_MAX) throw new SdkError('INVALID_ARGUMENT', 'envelope length out of range');
    const u = idBytes(e.userId, 'userId');
    const d = idBytes(e.deviceId, 'deviceId');
    w.u8(u.length).bytes(u).u8(d.length).bytes(d).u32be(e.envelope.length).bytes(e.envelope);
  }
  return w.finish();
}

/** The exact size of the container for entries with these ids and envelope lengths. */
export function containerSize(entries: readonly { userId: string; deviceId: string; envelopeLength: number }[]): number {
  let n = CONTAINER_FRAMING_BYTES;
  for (const e of entries) n += ENTRY_FRAMING_BYTES + utf8(e.userId).length + utf8(e.deviceId).length + e.envelopeLength;
  return n;
}

/** Parse a container; throws `MALFORMED`. Envelopes are views into `bytes`. */
export function decodeContainer(bytes: Uint8Array): ContainerEntry[] {
  if (bytes.length > BODY_BYTES_MAX) throw new SdkError('MALFORMED', `room body: longer than ${BODY_BYTES_MAX} bytes`);
  const r = new ByteReader(bytes, 'room body');
  if (r.u8() !== CONTAINER_VERSION) throw r.malformed('unknown version');
  const n = r.u16be();
  if (n === 0 || n > CONTAINER_ENTRIES_MAX) throw r.malformed('entry count out of range');
  const seen = new Set<string>();
  const entries: ContainerEntry[] = [];
  const id = (what: string): string => {
    const length = r.u8();
    if (length === 0 || length > ID_LENGTH_MAX) throw r.malformed(`${what} length out of range`);
    const s = fromUtf8(r.bytes(length));
    if (s === null) throw r.malformed(`${what} is not UTF-8`);
    return s;
  };
  for (let i = 0; i < n; i++) {
    const userId = id('userId');
    const deviceId = id('deviceId');
    const length = r.u32be();
    if (length === 0 || length > protocolLimits.ENVELOPE_BYTES_MAX) throw r.malformed('envelope length out of range');
    const envelope = r.bytes(length);
    const key = JSON.stringify([userId, deviceId]);
    if (seen.has(key)) throw r.malformed('an address appears twice');
    seen.add(key);
    entries.push({ userId, deviceId, envelope });
  }
  r.end();
  return entries;
}

/** The envelope for `device` in a container, or null when there is none; throws `MALFORMED` for a broken container. */
export function envelopeFor(bytes: Uint8Array, device: DeviceAddress): Uint8Array | null {
  for (const e of decodeContainer(bytes)) if (e.userId === device.userId && e.deviceId === device.deviceId) return e.envelope;
  return null;
}
