// CONNECTOR_ALLOWED_HOSTS as rules over what a connection really reaches: the name in the URL,
// the port, and every address the name resolves to. A hostname alone says nothing about where
// a socket goes (DNS can point an allowed name at 127.0.0.1 or 169.254.169.254), so the
// addresses are checked too, and the caller connects to the address that was checked.
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

export interface AllowEntry {
  /** Lowercase name, "*.suffix" as ".suffix", or a normalized IP literal. */
  host: string;
  wildcard: boolean;
  ip: boolean;
  /** null: the protocol's usual ports only; "*": any, because the operator wrote ":*". */
  port: number | "*" | null;
}

export class AllowListError extends Error {}

/** "api.github.com", "*.amazonaws.com", "10.0.0.5:9000", "[::1]:8080", "127.0.0.1:*". */
export function parseEntry(raw: string): AllowEntry {
  const text = raw.trim();
  // A bare IPv6 literal ("::1") has colons but no port; a bracketed one may have a port.
  const m = isIP(text) ? [text, text, undefined] : /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}|\*))?$/.exec(text);
  const host = (m?.[1] ?? "").toLowerCase().replace(/^\[|\]$/g, "");
  const wildcard = host.startsWith("*.");
  const ip = isIP(host) !== 0;
  const name = wildcard ? host.slice(1) : host;
  const port = m?.[2] === undefined ? null : m[2] === "*" ? "*" : Number(m[2]);
  const label = "[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?";
  const validName = new RegExp(`^${wildcard ? "" : label}(\\.${label})*$`).test(name) && name !== "";
  if (!m || (!ip && !validName) || (typeof port === "number" && (port < 1 || port > 65_535))) {
    throw new AllowListError(
      `"${raw}" is not a host, *.domain, IP address, host:port or host:* entry of CONNECTOR_ALLOWED_HOSTS`,
    );
  }
  return { host: ip ? normalizeIp(host) : name, wildcard, ip, port };
}

const parsed = new WeakMap<readonly string[], AllowEntry[]>();
function entries(allowed: readonly string[]): AllowEntry[] {
  let list = parsed.get(allowed);
  if (!list) {
    list = allowed.map(parseEntry);
    parsed.set(allowed, list);
  }
  return list;
}

/** "::ffff:127.0.0.1" is 127.0.0.1: one spelling per address, so literals compare as equal. */
function normalizeIp(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hexMapped?.[1] && hexMapped[2]) {
    const [hi, lo] = [Number.parseInt(hexMapped[1], 16), Number.parseInt(hexMapped[2], 16)];
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return address.toLowerCase();
}

/** Addresses that are not the public internet: private, loopback, link-local, CGNAT, multicast, reserved. */
const INTERNAL = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  INTERNAL.addSubnet(net, bits, "ipv4");
// 64:ff9b::/96 (well-known NAT64) is not here: it reaches its embedded IPv4 address, which is
// checked instead (on an IPv6-only network every public name resolves into it).
for (const [net, bits] of [
  ["::", 96], // :: and ::1, and the deprecated IPv4-compatible ::a.b.c.d
  ["64:ff9b:1::", 48], // local-use NAT64: translates into the operator's own network
  ["100::", 64],
  ["2001::", 32], // Teredo: tunnels to any IPv4 address, the server's neighbours included
  ["2001:db8::", 32],
  ["2002::", 16],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10], // site-local (deprecated, still routed inside some networks)
  ["ff00::", 8],
] as const)
  INTERNAL.addSubnet(net, bits, "ipv6");

const NAT64 = new BlockList();
NAT64.addSubnet("64:ff9b::", 96, "ipv6");

/** The 16 bytes of an IPv6 address (a valid one: isIP said so). */
function ipv6Bytes(address: string): number[] {
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const groups = (part: string) => (part ? part.split(":").map((g) => Number.parseInt(g, 16)) : []);
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const all = [...front, ...Array(8 - front.length - back.length).fill(0), ...back] as number[];
  return all.flatMap((g) => [g >> 8, g & 255]);
}

export function isInternal(address: string): boolean {
  const a = normalizeIp(address);
  if (isIP(a) === 4) return INTERNAL.check(a, "ipv4");
  if (NAT64.check(a, "ipv6")) return isInternal(ipv6Bytes(a).slice(12).join("."));
  return INTERNAL.check(a, "ipv6");
}

export interface Target {
  /** As in the URL, without IPv6 brackets. */
  hostname: string;
  port: number;
  /** The ports an entry without ":port" allows: 443 and 80 for HTTP(S), 465, 587 and 25 for SMTP. */
  usualPorts: readonly number[];
}

/** The entries naming this host on this port; name checks only, addresses come after. */
export function matchingEntries(target: Target, allowed: readonly string[]): AllowEntry[] {
  const host = normalizeIp(
    target.hostname
      .replace(/^\[|\]$/g, "")
      .toLowerCase()
      .replace(/\.$/, ""),
  );
  return entries(allowed).filter((e) => {
    const portOk =
      e.port === "*" || (e.port === null ? target.usualPorts.includes(target.port) : e.port === target.port);
    if (!portOk) return false;
    if (e.wildcard) return host.endsWith(e.host) && host.length > e.host.length;
    return host === e.host;
  });
}

export interface Resolved {
  address: string;
  family: 4 | 6;
}

export type Refusal = { refused: string };

/**
 * Where a connection may go: the target's addresses, each either public or named literally
 * by a matching IP entry. An internal address is reached only by listing it ("10.0.0.5:9000",
 * "127.0.0.1:*"): a name never leads inside, whatever it resolves to. Every address must
 * pass, so a name with one public and one internal answer is refused, not tried in turn; all
 * of them are returned, so a connection can try the next when one does not answer.
 */
export async function resolveTarget(
  target: Target,
  allowed: readonly string[],
): Promise<{ addresses: Resolved[] } | Refusal> {
  const matched = matchingEntries(target, allowed);
  const where = `${target.hostname}:${target.port}`;
  if (!matched.length) return { refused: `${where} is not in CONNECTOR_ALLOWED_HOSTS` };
  const literal = normalizeIp(target.hostname.replace(/^\[|\]$/g, ""));
  let addresses: Resolved[];
  if (isIP(literal)) addresses = [{ address: literal, family: isIP(literal) as 4 | 6 }];
  else {
    try {
      addresses = (await lookup(target.hostname, { all: true, verbatim: true })) as Resolved[];
    } catch (err) {
      return { refused: `${target.hostname} does not resolve (${(err as { code?: string }).code ?? "DNS error"})` };
    }
  }
  if (!addresses.length) return { refused: `${target.hostname} does not resolve` };
  const listed = new Set(matched.filter((e) => e.ip).map((e) => e.host));
  for (const { address } of addresses) {
    if (isInternal(address) && !listed.has(normalizeIp(address))) {
      return {
        refused: `${where} resolves to an internal address (${address}); only an entry naming that address allows it`,
      };
    }
  }
  // All of them (each passed): a connection falls back from one to the next (happy eyeballs).
  const unique = [...new Set(addresses.map((a) => normalizeIp(a.address)))];
  return { addresses: unique.map((address) => ({ address, family: isIP(address) as 4 | 6 })) };
}
