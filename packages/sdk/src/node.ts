/**
 * `@parley/sdk/node`: what only runs in Node. Kept out of the main entry
 * point so that browser bundles of the SDK never pull in better-sqlite3
 * (nor `ws`: the main entry's default transport comes from
 * `#default-transport`, which is `ws` only under the `node` condition).
 *
 * @example
 * ```ts
 * import { ParleyClient } from '@parley/sdk';
 * import { SqliteClientStore } from '@parley/sdk/node';
 * const store = await SqliteClientStore.open('alice.parley', passphrase);
 * const alice = store.account() === null
 *   ? await ParleyClient.register(url, 'alice', 'laptop', { store })
 *   : await ParleyClient.login(url, 'alice', 'laptop', { store });
 * ```
 *
 * @module
 */
export { SqliteClientStore, STORE_FORMAT, type SqliteStoreOptions } from './sqlite-store.ts';
export type { Passphrase } from './sealed-records.ts';
export { webSocketTransport } from './transport-ws.ts';
