/**
 * Device addresses: who a session is with. A user has several devices and
 * each pair of devices has its own session, so every session is bound to
 * (local device, remote device) — in the PQXDH associated data and in the
 * context under which a stored session is sealed.
 *
 * Encoding: `u8 len ‖ UTF-8(userId) ‖ u8 len ‖ UTF-8(deviceId)`.
 *
 * @module
 */
import { ByteWriter, fromUtf8, utf8, type ByteReader } from './_bytes.ts';
import { ProtocolError } from './errors.ts';
import { ADDRESS_PART_BYTES_MAX } from './limits.ts';

export interface DeviceAddress {
  readonly userId: string;
  readonly deviceId: string;
}

/** Check an address given by the caller and return a frozen copy. */
export function deviceAddress(value: unknown, name = 'address'): DeviceAddress {
  if (typeof value !== 'object' || value === null) throw new ProtocolError('INVALID_ARGUMENT', `${name} must be { userId, deviceId }`);
  const { userId, deviceId } = value as Record<string, unknown>;
  for (const [field, v] of [
    ['userId', userId],
    ['deviceId', deviceId],
  ] as const) {
    if (typeof v !== 'string' || v.length === 0) throw new ProtocolError('INVALID_ARGUMENT', `${name}.${field} must be a non-empty string`);
    // Lone surrogates would not survive UTF-8 and back; the same address must always encode the same.
    if (fromUtf8(utf8(v)) !== v) throw new ProtocolError('INVALID_ARGUMENT', `${name}.${field} is not valid Unicode`);
    if (utf8(v).length > ADDRESS_PART_BYTES_MAX) throw new ProtocolError('LIMIT', `${name}.${field} is longer than ${ADDRESS_PART_BYTES_MAX} bytes`);
  }
  return Object.freeze({ userId: userId as string, deviceId: deviceId as string });
}

export function sameAddress(a: DeviceAddress, b: DeviceAddress): boolean {
  return a.userId === b.userId && a.deviceId === b.deviceId;
}

/** A string key for maps: the encoding is injective, so distinct addresses never collide. */
export function addressKey(a: DeviceAddress): string {
  return JSON.stringify([a.userId, a.deviceId]);
}

export function formatAddress(a: DeviceAddress): string {
  return `${a.userId}/${a.deviceId}`;
}

export function writeAddress(w: ByteWriter, a: DeviceAddress): ByteWriter {
  const user = utf8(a.userId);
  const device = utf8(a.deviceId);
  return w.u8(user.length).bytes(user).u8(device.length).bytes(device);
}

export function encodeAddress(a: DeviceAddress): Uint8Array {
  return writeAddress(new ByteWriter(), a).finish();
}

export function readAddress(r: ByteReader): DeviceAddress {
  const part = (): string => {
    const length = r.u8();
    if (length === 0) throw r.malformed('empty address part');
    const s = fromUtf8(r.bytes(length));
    if (s === null) throw r.malformed('address is not UTF-8');
    return s;
  };
  const userId = part();
  const deviceId = part();
  return Object.freeze({ userId, deviceId });
}
