/**
 * The symbol Node's `util.inspect` looks for. Classes holding secrets define
 * `toString`, `toJSON` and this method to print a redacted summary, so no
 * ordinary way of logging them shows key material.
 *
 * @module
 */
export const inspectSymbol: unique symbol = Symbol.for('nodejs.util.inspect.custom');
