import { isIP } from 'node:net';

/**
 * Where an IP address leads, for outbound requests made on behalf of a remote party (client
 * metadata documents): only `public` addresses may be connected to (SSRF, RFC 6819 §5.2.3.1,
 * draft-ietf-oauth-client-id-metadata-document-01 §6.5).
 *
 * Ranges from the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and updates).
 * IPv6 is public only inside 2000::/3 (global unicast) and outside the special ranges in it;
 * addresses that embed an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) are
 * classified by the IPv4 address they lead to.
 */
export type AddressClass = 'public' | 'unspecified' | 'loopback' | 'private' | 'link-local' | 'shared' | 'multicast' | 'documentation' | 'reserved' | 'invalid';

type Range = [prefix: number[], bits: number, kind: Exclude<AddressClass, 'public' | 'invalid'>];

const V4: Range[] = [
  [[0, 0, 0, 0], 8, 'unspecified'], // "this network" (RFC 791); 0.0.0.0 reaches the local host on Linux
  [[10, 0, 0, 0], 8, 'private'], // RFC 1918
  [[100, 64, 0, 0], 10, 'shared'], // RFC 6598 carrier-grade NAT
  [[127, 0, 0, 0], 8, 'loopback'],
  [[169, 254, 0, 0], 16, 'link-local'], // RFC 3927; cloud metadata services live here
  [[172, 16, 0, 0], 12, 'private'],
  [[192, 0, 0, 0], 24, 'reserved'], // RFC 6890 IETF protocol assignments
  [[192, 0, 2, 0], 24, 'documentation'],
  [[192, 88, 99, 0], 24, 'reserved'], // RFC 7526 deprecated 6to4 relay anycast
  [[192, 168, 0, 0], 16, 'private'],
  [[198, 18, 0, 0], 15, 'reserved'], // RFC 2544 benchmarking
  [[198, 51, 100, 0], 24, 'documentation'],
  [[203, 0, 113, 0], 24, 'documentation'],
  [[224, 0, 0, 0], 4, 'multicast'],
  [[240, 0, 0, 0], 4, 'reserved'], // RFC 1112 future use, and 255.255.255.255 broadcast
];

const V6: Range[] = [
  [[0x20, 0x01, 0x0d, 0xb8], 32, 'documentation'], // RFC 3849
  [[0x3f, 0xff], 20, 'documentation'], // RFC 9637
  [[0x20, 0x01, 0x00], 23, 'reserved'], // RFC 2928 IETF protocol assignments (Teredo, ORCHID, benchmarking)
  [[0xfc], 7, 'private'], // RFC 4193 unique local
  [[0xfe, 0x80], 10, 'link-local'],
  [[0xfe, 0xc0], 10, 'private'], // RFC 3879 deprecated site-local
  [[0xff], 8, 'multicast'],
];

function inRange(bytes: Uint8Array, prefix: number[], bits: number): boolean {
  for (let i = 0; i < bits; i += 8) {
    const take = Math.min(8, bits - i);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[i / 8] ?? 0) & mask) !== ((prefix[i / 8] ?? 0) & mask)) return false;
  }
  return true;
}

function parseV4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255)) return undefined;
  return Uint8Array.from(parts.map(Number));
}

/** 16 bytes of an IPv6 address in any RFC 4291 §2.2 text form (a zone id is ignored). */
export function parseIPv6(text: string): Uint8Array | undefined {
  let rest = text.replace(/%.*$/, '');
  const bytes = new Uint8Array(16);
  let tail: Uint8Array | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (rest.includes('.', lastColon)) {
    tail = parseV4(rest.slice(lastColon + 1));
    if (!tail) return undefined;
    rest = `${rest.slice(0, lastColon + 1)}0:0`;
  }
  const halves = rest.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0]!);
  const back = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - back.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...back];
  for (let i = 0; i < 8; i++) {
    const group = all[i]!;
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  }
  if (tail) bytes.set(tail, 12);
  return bytes;
}

function classifyV4(bytes: Uint8Array): AddressClass {
  for (const [prefix, bits, kind] of V4) if (inRange(bytes, prefix, bits)) return kind;
  return 'public';
}

function classifyV6(bytes: Uint8Array): AddressClass {
  const zeroUpTo = (n: number) => bytes.subarray(0, n).every((b) => b === 0);
  if (zeroUpTo(15) && bytes[15] === 0) return 'unspecified';
  if (zeroUpTo(15) && bytes[15] === 1) return 'loopback';
  // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2): the socket reaches the IPv4 address.
  if (zeroUpTo(10) && bytes[10] === 0xff && bytes[11] === 0xff) return classifyV4(bytes.subarray(12));
  // 64:ff9b::/96 (RFC 6052): a NAT64 gateway reaches the embedded IPv4 address.
  if (inRange(bytes, [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], 96)) return classifyV4(bytes.subarray(12));
  // 2002::/16 (RFC 3056): 6to4 reaches the IPv4 address in bits 16–48.
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return classifyV4(bytes.subarray(2, 6));
  for (const [prefix, bits, kind] of V6) if (inRange(bytes, prefix, bits)) return kind;
  // Outside 2000::/3 nothing is globally routed unicast (RFC 4291 §2.4; 64:ff9b:1::/48 local NAT64, 100::/64 discard, ::/96 …).
  if ((bytes[0]! & 0xe0) !== 0x20) return 'reserved';
  return 'public';
}

/** What kind of address `ip` is (an IPv4 or IPv6 literal); `invalid` when it is not one. */
export function classifyAddress(ip: string): AddressClass {
  const family = isIP(ip.replace(/%.*$/, ''));
  if (family === 4) return classifyV4(parseV4(ip)!);
  if (family === 6) {
    const bytes = parseIPv6(ip);
    return bytes ? classifyV6(bytes) : 'invalid';
  }
  return 'invalid';
}

/** Whether an outbound request for a remote party may connect to `ip`. */
export function isPublicAddress(ip: string): boolean {
  return classifyAddress(ip) === 'public';
}

/**
 * The unit a per-address limit should count: an IPv4 address (also when written as ::ffff:a.b.c.d),
 * or the /64 of an IPv6 address, which one subscriber usually holds whole (RFC 6177) and could
 * otherwise rotate through to escape the limit.
 */
export function rateLimitKey(ip: string): string {
  if (!ip.includes(':')) return ip;
  const bytes = parseIPv6(ip);
  if (!bytes) return ip;
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.subarray(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return `${groups.join(':')}::/64`;
}
