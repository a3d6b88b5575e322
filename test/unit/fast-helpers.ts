// Shared by the fast-path tests: a seeded PRNG, random D-Bus names and messages, and dbus-next's
// own marshaller and decoder as the reference.
import { EventEmitter } from 'node:events';
import dbus from 'dbus-next';
import * as dbusMessage from 'dbus-next/lib/message.js';
import * as marshallCompat from 'dbus-next/lib/marshall-compat.js';

export const { Message, MessageType, MessageFlag } = dbus;

/** mulberry32: small, seeded, good enough to spread test cases. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)] as T;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(0, 255)));
  const u64 = (): bigint => {
    const edge = [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 2n, 2n ** 64n - 1n];
    if (next() < 0.2) return pick(edge);
    return (BigInt(int(0, 0xffffffff)) << 32n) | BigInt(int(0, 0xffffffff));
  };
  const u32 = (): number => (next() < 0.1 ? pick([1, 2, 255, 256, 65535, 65536, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]) : int(1, 0xffffffff));
  return { next, int, pick, bytes, u64, u32 };
}
export type Rng = ReturnType<typeof rng>;

/** A valid unique or well-known bus name. */
export function busName(r: Rng): string {
  if (r.next() < 0.6) return `:${r.int(1, 999)}.${r.int(0, 99999)}`;
  const el = () => r.pick(['org', 'com', 'Chronos', 'jesternet', 'a', 'x_y', 'B9', 'gtk-1']);
  return Array.from({ length: r.int(2, 5) }, el).join('.');
}

/** Any string (what a hostile or odd peer could put in a header field). */
export function anyString(r: Rng): string {
  const alphabet = ['a', 'Z', '0', '.', ':', '/', '_', '-', ' ', 'é', 'ß', '→', '日', '😀', '\u0001', '\u007f'];
  return Array.from({ length: r.int(0, 40) }, () => r.pick(alphabet)).join('');
}

/** dbus-next's bytes for a message given as a plain object (its connection's marshaller). */
export function marshal(msg: Record<string, unknown>): Buffer {
  return marshallCompat.marshallMessage(msg instanceof Message ? msg : { ...msg })[0];
}

/**
 * dbus-next's decoding of a byte stream: its stream parser on a stand-in stream, then the body
 * conversion and Message construction of its connection. Returns the messages in order, or an
 * error as the first thrown/emitted one.
 */
export function dbusNextDecode(bytes: Buffer): { messages: InstanceType<typeof Message>[]; error: unknown } {
  let pos = 0;
  const messages: InstanceType<typeof Message>[] = [];
  let error: unknown = null;
  const stream = Object.assign(new EventEmitter(), {
    read(n: number): Buffer | null {
      if (!(n > 0) || bytes.length - pos < n) return null;
      const r = bytes.subarray(pos, pos + n);
      pos += n;
      return r;
    },
  });
  dbusMessage.unmarshalMessages(stream, (raw) => {
    try {
      messages.push(new Message(marshallCompat.messageToJsFmt(raw) as never));
    } catch (e) {
      error ??= e;
    }
  });
  try {
    stream.emit('readable');
  } catch (e) {
    error ??= e;
  }
  return { messages, error };
}

export const CHRONOS = { name: 'org.jesternet.Chronos', path: '/org/jesternet/Chronos', iface: 'org.jesternet.Chronos' };

/** A hot call as a client library or busctl sends it, after the bus added SENDER. */
export function hotCallObject(r: Rng, member = r.pick(['NextTick', 'GetTick'])): Record<string, unknown> {
  const m: Record<string, unknown> = {
    type: MessageType.METHOD_CALL,
    serial: r.u32(),
    flags: r.pick([0, 0, 0, MessageFlag.NO_REPLY_EXPECTED, MessageFlag.NO_AUTO_START, 3, 4]),
    path: CHRONOS.path,
    member,
    destination: r.next() < 0.8 ? CHRONOS.name : busName(r),
    sender: busName(r),
  };
  if (r.next() < 0.85) m.interface = CHRONOS.iface;
  return m;
}

/** Some other message a bus may deliver to the daemon (calls with bodies, returns, signals, errors). */
export function otherMessageObject(r: Rng): Record<string, unknown> {
  const serial = r.u32();
  switch (r.int(0, 5)) {
    case 0:
      return { type: MessageType.METHOD_CALL, serial, path: CHRONOS.path, interface: CHRONOS.iface, member: 'GetPhiTimestamp', destination: CHRONOS.name, sender: busName(r), signature: 's', body: [anyString(r)] };
    case 1:
      return { type: MessageType.METHOD_CALL, serial, path: CHRONOS.path, interface: CHRONOS.iface, member: 'LogEvent', destination: CHRONOS.name, sender: busName(r), signature: 'ssss', body: [anyString(r), anyString(r), anyString(r), 'x'.repeat(r.int(0, 3000))] };
    case 2:
      return { type: MessageType.METHOD_RETURN, serial, replySerial: r.u32(), destination: busName(r), sender: 'org.freedesktop.DBus', signature: 'u', body: [r.int(0, 4)] };
    case 3:
      return { type: MessageType.SIGNAL, serial, path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'NameAcquired', destination: busName(r), sender: 'org.freedesktop.DBus', signature: 's', body: [busName(r)] };
    case 4:
      return { type: MessageType.ERROR, serial, replySerial: r.u32(), errorName: 'org.freedesktop.DBus.Error.Failed', destination: busName(r), sender: busName(r), signature: 's', body: [anyString(r)] };
    default: {
      const [signature, body] = r.pick([
        ['', []],
        ['ss', [CHRONOS.iface, 'Tick']],
        ['ay', [r.bytes(r.int(0, 50))]],
        ['t', [r.u64()]],
      ] as Array<[string, unknown[]]>);
      return { type: MessageType.METHOD_CALL, serial, path: r.pick(['/', '/org', CHRONOS.path]), interface: r.pick(['org.freedesktop.DBus.Properties', 'org.freedesktop.DBus.Peer', CHRONOS.iface]), member: r.pick(['Get', 'Ping', 'NextTick', 'Introspect']), destination: CHRONOS.name, sender: busName(r), signature, body };
    }
  }
}
