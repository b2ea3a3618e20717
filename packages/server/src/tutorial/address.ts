/**
 * The address the tutorial's per-address limits count by (connections,
 * handshakes, relay share). The peer's address comes from
 * `client-address.ts` (the proxy's `X-Forwarded-For` entry with
 * `trustProxy`). An IPv6 address counts by its /64: one host (one LAN)
 * usually gets a whole /64 and can pick any address in it, so counting
 * single addresses would give it 2⁶⁴ of each limit. An IPv4-mapped IPv6
 * address (`::ffff:192.0.2.1`, on a dual-stack socket) is the IPv4 one.
 *
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** The eight 16-bit groups of an IPv6 address (no zone), or null. */
function groups(v6: string): number[] | null {
  let text = v6;
  // A dotted IPv4 tail (`::ffff:1.2.3.4`, `64:ff9b::1.2.3.4`) is two groups.
  const dotted = /:(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const head = parse(halves[0] ?? '');
  const rest = halves.length === 2 ? parse(halves[1] ?? '') : [];
  const known = head.length + rest.length;
  if (known > 8 || (halves.length === 1 && known !== 8)) return null;
  const all = [...head, ...Array<number>(8 - known).fill(0), ...rest];
  return all.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff) ? null : all;
}

/** `address` as the per-address limits see it: an IPv4 address, an IPv6 /64 (`2001:db8:1:2::/64`), or the string itself. */
export function addressKey(address: string): string {
  const mapped = MAPPED_V4.exec(address);
  if (mapped !== null && isIPv4(mapped[1] as string)) return mapped[1] as string;
  const noZone = address.split('%')[0] ?? address;
  if (!isIPv6(noZone)) return address;
  const g = groups(noZone);
  if (g === null) return address;
  return `${g
    .slice(0, 4)
    .map((x) => x.toString(16))
    .join(':')}::/64`;
}
