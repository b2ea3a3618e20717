/**
 * Checks of what callers pass to the public API, in one place: a wrong type
 * is `INVALID_ARGUMENT` naming the argument, never a TypeError from deep
 * inside (or, worse, a different answer per backend — node:crypto takes a
 * string where noble throws).
 *
 * @module
 */
import { ProtocolError } from './errors.ts';

export function bytesArgument(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new ProtocolError('INVALID_ARGUMENT', `${name} must be a Uint8Array`);
  return value;
}

/** A class, its constructor private or not. */
interface ClassOf<T> {
  readonly prototype: T;
  [Symbol.hasInstance](value: unknown): boolean;
}

export function instanceArgument<T>(value: unknown, type: ClassOf<T>, name: string, typeName: string): T {
  if (!(value instanceof type)) throw new ProtocolError('INVALID_ARGUMENT', `${name} must be a ${typeName}`);
  return value as T;
}

export function functionArgument(value: unknown, name: string): void {
  if (typeof value !== 'function') throw new ProtocolError('INVALID_ARGUMENT', `${name} must be a function`);
}

/** An object with every one of `methods` (a store the caller implements). */
export function storeArgument<T>(value: unknown, methods: readonly string[], name: string): T {
  if (typeof value !== 'object' || value === null) throw new ProtocolError('INVALID_ARGUMENT', `${name} must be an object`);
  for (const m of methods) {
    if (typeof (value as Record<string, unknown>)[m] !== 'function') throw new ProtocolError('INVALID_ARGUMENT', `${name} must have a ${m}() method`);
  }
  return value as T;
}
