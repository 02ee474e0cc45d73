import { describe, expect, it } from 'vitest';
import { classifyAddress, isPublicAddress, parseIPv6 } from '../../../src/shared/ip-address.js';

describe('outbound address classifier (SSRF guard for client metadata documents)', () => {
  it.each([
    ['8.8.8.8'],
    ['1.1.1.1'],
    ['93.184.216.34'],
    ['100.63.255.255'], // just below 100.64.0.0/10
    ['100.128.0.0'], // just above it
    ['172.15.255.255'],
    ['172.32.0.0'],
    ['2606:4700:4700::1111'],
    ['2001:4860:4860::8888'],
    ['2a00:1450:4001:82a::200e'],
    ['::ffff:8.8.8.8'], // IPv4-mapped public
    ['64:ff9b::808:808'], // NAT64 of 8.8.8.8
    ['2002:808:808::1'], // 6to4 of 8.8.8.8
  ])('%s is public', (ip) => {
    expect(classifyAddress(ip)).toBe('public');
    expect(isPublicAddress(ip)).toBe(true);
  });

  it.each([
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'], // cloud metadata service
    ['100.64.0.1', 'shared'], // RFC 6598 CGNAT
    ['100.127.255.255', 'shared'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['192.0.0.8', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['::', 'unspecified'],
    ['0:0:0:0:0:0:0:0', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['2001:0:4136:e378::1', 'reserved'], // Teredo
    ['::ffff:127.0.0.1', 'loopback'], // IPv4-mapped loopback
    ['::ffff:7f00:1', 'loopback'], // the same, in hex
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['64:ff9b::7f00:1', 'loopback'], // NAT64 of 127.0.0.1
    ['64:ff9b::a9fe:a9fe', 'link-local'], // NAT64 of 169.254.169.254
    ['2002:7f00:1::', 'loopback'], // 6to4 of 127.0.0.1
    ['2002:c0a8:101::1', 'private'], // 6to4 of 192.168.1.1
    ['::127.0.0.1', 'reserved'], // deprecated IPv4-compatible
    ['100::1', 'reserved'], // discard prefix
    ['64:ff9b:1::1', 'reserved'], // local-use NAT64
  ])('%s is %s', (ip, kind) => {
    expect(classifyAddress(ip)).toBe(kind);
    expect(isPublicAddress(ip)).toBe(false);
  });

  it.each([['localhost'], ['example.com'], [''], ['1.2.3'], ['1.2.3.256'], ['01.2.3.4'], ['::1::2'], ['12345::1'], ['[::1]']])(
    '%j is not an address',
    (text) => {
      expect(classifyAddress(text)).toBe('invalid');
      expect(isPublicAddress(text)).toBe(false);
    },
  );

  it('parses every RFC 4291 §2.2 text form to the same bytes', () => {
    const full = Array.from(parseIPv6('2001:db8:0:0:0:0:2:1')!);
    expect(Array.from(parseIPv6('2001:db8::2:1')!)).toEqual(full);
    expect(Array.from(parseIPv6('2001:DB8::2:1')!)).toEqual(full);
    expect(Array.from(parseIPv6('::ffff:1.2.3.4')!)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]);
    expect(parseIPv6('1:2:3:4:5:6:7:8:9')).toBeUndefined();
    expect(parseIPv6('1:2:3:4:5:6:7::8')).toBeUndefined();
  });
});
