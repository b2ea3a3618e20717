/**
 * CRC-32C (Castagnoli; reflected polynomial 0x82F63B78, init and final XOR
 * 0xFFFFFFFF), the checksum of Soter containers. Check value for ASCII
 * "123456789" is 0xE3069283.
 *
 * It detects accidental corruption only; it is not a MAC.
 *
 * @module
 */

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Running CRC-32C update; start with 0xFFFFFFFF and XOR the result with 0xFFFFFFFF. */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  let c = crc;
  for (let i = 0; i < data.length; i++) c = (TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c >>> 0;
}

export function crc32c(data: Uint8Array): number {
  return (crc32cUpdate(0xffffffff, data) ^ 0xffffffff) >>> 0;
}
