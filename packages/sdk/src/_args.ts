/**
 * Checks of what an app passes in, so that misuse is an
 * `SdkError('INVALID_ARGUMENT')` and never a `TypeError` from deep inside
 * (a `null` where an options object goes, a file reference that is not one).
 *
 * @module
 */
import { SdkError } from './errors.ts';

/** An optional options object: `undefined` is none; anything but a plain object is refused. */
export function optionsArg<T extends object>(value: T | undefined, what: string): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SdkError('INVALID_ARGUMENT', `${what} must be an object`);
  return value;
}

/** A required object argument (a store, a request, a file reference). */
export function objectArg<T extends object>(value: T, what: string): T {
  if (typeof value !== 'object' || value === null) throw new SdkError('INVALID_ARGUMENT', `${what} is missing`);
  return value;
}

/** A `FileRef` as a `file` message carries it (the fields `downloadFile` and `deleteFile` read). */
export function fileRefArg<T extends { readonly blobId: string; readonly blobSize: number; readonly key: Uint8Array; readonly digest: Uint8Array }>(value: T): T {
  objectArg(value, 'file');
  if (typeof value.blobId !== 'string' || value.blobId === '') throw new SdkError('INVALID_ARGUMENT', 'file.blobId is missing');
  if (!Number.isSafeInteger(value.blobSize) || value.blobSize < 1) throw new SdkError('INVALID_ARGUMENT', 'file.blobSize is not a size');
  if (!(value.key instanceof Uint8Array) || !(value.digest instanceof Uint8Array)) throw new SdkError('INVALID_ARGUMENT', 'file.key and file.digest must be bytes');
  return value;
}

/** A `ClientStore` (what `register`, `login` and the key backup take): checked by shape, as apps may bring their own. */
export function storeArg<T>(value: T, what = 'store'): T {
  const v = value as { account?: unknown; setAccount?: unknown; identity?: unknown } | null;
  if (typeof v !== 'object' || v === null || typeof v.account !== 'function' || typeof v.setAccount !== 'function' || typeof v.identity !== 'object' || v.identity === null) {
    throw new SdkError('INVALID_ARGUMENT', `${what} is not a ClientStore`);
  }
  return value;
}
