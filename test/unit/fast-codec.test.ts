// The fast codec against dbus-next: byte-identical replies, the same decoding of hot calls, and no
// exception, misdecoding or misframing on hostile input.
import { describe, expect, it } from 'vitest';
import { BROKEN, NEED_MORE, decodeHotCall, encodeReturnT, frameLength } from '../../src/dbus/fast/codec.js';
import {
  CHRONOS,
  Message,
  MessageType,
  anyString,
  busName,
  dbusNextDecode,
  hotCallObject,
  marshal,
  otherMessageObject,
  rng,
  type Rng,
} from './fast-helpers.js';

const N = Number(process.env.FAST_TEST_ITERATIONS ?? 3000);

/** dbus-next's own length rule (lib/message.js, messageParser). */
function dbusNextFrameLength(b: Buffer): number {
  const le = b[0] === 0x6c;
  const fieldsLength = le ? b.readUInt32LE(12) : b.readUInt32BE(12);
  const bodyLength = le ? b.readUInt32LE(4) : b.readUInt32BE(4);
  return 16 + (((fieldsLength + 7) >> 3) << 3) + bodyLength;
}

/** A bodyless method call with header fields in any order (as libdbus and the bus write them). */
function rawCall(serial: number, flags: number, fields: Array<[number, string, string]>): Buffer {
  const out: number[] = [0x6c, 1, flags, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  const put32 = (at: number, v: number) => {
    out[at] = v & 255;
    out[at + 1] = (v >>> 8) & 255;
    out[at + 2] = (v >>> 16) & 255;
    out[at + 3] = (v >>> 24) & 255;
  };
  put32(8, serial);
  for (const [code, sig, value] of fields) {
    while (out.length % 8) out.push(0);
    out.push(code, 1, sig.charCodeAt(0), 0);
    const bytes = Buffer.from(value, 'utf8');
    if (sig === 'g') {
      out.push(bytes.length, ...bytes, 0);
    } else {
      while (out.length % 4) out.push(0);
      const at = out.length;
      out.push(0, 0, 0, 0);
      put32(at, bytes.length);
      out.push(...bytes, 0);
    }
  }
  put32(12, out.length - 16);
  while (out.length % 8) out.push(0);
  return Buffer.from(out);
}

function shuffle<T>(r: Rng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
  }
  return xs;
}

/** Everything dbus-next decodes that a handler of a hot call may look at. */
function view(m: Record<string, unknown>) {
  return {
    type: m.type,
    flags: m.flags,
    serial: m.serial,
    path: m.path,
    interface: m.interface || undefined,
    member: m.member,
    destination: m.destination || undefined,
    sender: m.sender || undefined,
    signature: m.signature || '',
    body: m.body,
  };
}

function expectAgreesWithDbusNext(buf: Buffer): void {
  const hot = decodeHotCall(buf, 0, buf.length);
  if (hot === null) return;
  const ref = dbusNextDecode(buf);
  expect(ref.error, 'dbus-next failed on a frame the fast codec took').toBeNull();
  expect(ref.messages).toHaveLength(1);
  expect(view(hot as unknown as Record<string, unknown>)).toEqual(view(ref.messages[0] as unknown as Record<string, unknown>));
}

describe('encodeReturnT', () => {
  it('writes exactly the bytes dbus-next writes for Message.newMethodReturn(call, "t", [tick])', () => {
    const r = rng(1);
    for (let i = 0; i < N; i++) {
      const call = { serial: r.u32(), sender: busName(r) };
      const value = r.u64();
      const serial = r.u32();
      const reply = Message.newMethodReturn(call as never, 't', [value]);
      reply.serial = serial;
      const expected = marshal(reply as unknown as Record<string, unknown>);
      expect(encodeReturnT(serial, call.serial, call.sender, value)).toEqual(expected);
    }
  });

  it('matches dbus-next for any destination string, and for none', () => {
    const r = rng(2);
    for (let i = 0; i < N; i++) {
      const destination = r.next() < 0.1 ? r.pick([undefined, '']) : anyString(r);
      const msg = { type: MessageType.METHOD_RETURN, serial: r.u32(), replySerial: r.u32(), destination, signature: 't', body: [r.u64()] };
      expect(encodeReturnT(msg.serial, msg.replySerial, destination, msg.body[0] as bigint)).toEqual(marshal(msg));
    }
  });

  it('declines what dbus-next would write differently or refuse', () => {
    for (const [s, rs, v] of [
      [0, 1, 1n],
      [1, 0, 1n],
      [2 ** 32, 1, 1n],
      [1, 1.5, 1n],
      [1, 1, -1n],
      [1, 1, 2n ** 64n],
      [1, 1, 5 as unknown as bigint],
    ] as Array<[number, number, bigint]>) {
      expect(encodeReturnT(s, rs, ':1.1', v)).toBeNull();
    }
  });
});

describe('decodeHotCall', () => {
  it('takes every hot call dbus-next marshals, and decodes it as dbus-next does', () => {
    const r = rng(3);
    for (let i = 0; i < N; i++) {
      const buf = marshal(hotCallObject(r));
      expect(decodeHotCall(buf, 0, buf.length)).not.toBeNull();
      expectAgreesWithDbusNext(buf);
    }
  });

  it('takes hot calls with header fields in any order (libdbus, the bus appending SENDER)', () => {
    const r = rng(4);
    for (let i = 0; i < N; i++) {
      const fields: Array<[number, string, string]> = [
        [1, 'o', CHRONOS.path],
        [3, 's', r.pick(['NextTick', 'GetTick'])],
      ];
      if (r.next() < 0.8) fields.push([2, 's', CHRONOS.iface]);
      if (r.next() < 0.9) fields.push([6, 's', CHRONOS.name]);
      if (r.next() < 0.9) fields.push([7, 's', busName(r)]);
      if (r.next() < 0.3) fields.push([8, 'g', '']);
      const buf = rawCall(r.u32(), r.int(0, 7), shuffle(r, fields));
      expect(frameLength(buf, 0, buf.length)).toBe(buf.length);
      expect(decodeHotCall(buf, 0, buf.length)).not.toBeNull();
      expectAgreesWithDbusNext(buf);
    }
  });

  it('decodes at an offset inside a larger buffer', () => {
    const r = rng(5);
    const a = marshal(otherMessageObject(r));
    const b = marshal(hotCallObject(r, 'NextTick'));
    const both = Buffer.concat([a, b]);
    const hot = decodeHotCall(both, a.length, b.length);
    expect(hot).toEqual(decodeHotCall(b, 0, b.length));
    expect(hot?.member).toBe('NextTick');
  });

  it('leaves everything else to dbus-next', () => {
    const r = rng(6);
    const base = { serial: 7, flags: 0 };
    const cases: Buffer[] = [
      rawCall(7, 0, [[1, 'o', CHRONOS.path], [3, 's', 'NextTick'], [9, 'u', 'x']]), // unknown/UNIX_FDS field
      rawCall(7, 0, [[1, 'o', CHRONOS.path], [3, 'o', 'NextTick']]), // wrong type
      rawCall(7, 0, [[1, 'o', CHRONOS.path], [3, 's', 'NextTick'], [3, 's', 'GetTick']]), // twice
      rawCall(7, 0, [[1, 'o', CHRONOS.path], [3, 's', 'NextTick'], [8, 'g', 's']]), // a signature
      rawCall(7, 0, [[3, 's', 'NextTick']]), // no path
      rawCall(7, 0, [[1, 'o', CHRONOS.path]]), // no member
      rawCall(7, 0, [[1, 'o', CHRONOS.path], [3, 's', 'NextTick'], [5, 'u', 'x']]), // REPLY_SERIAL
      rawCall(0, 0, [[1, 'o', CHRONOS.path], [3, 's', 'NextTick']]), // serial 0
      rawCall(7, 0, [[1, 'o', CHRONOS.path], [3, 's', 'NextTick'], [7, 's', '']]), // empty sender
      marshal({ ...hotCallObject(r), signature: 's', body: ['x'] }), // a body
      marshal({ ...hotCallObject(r), type: MessageType.SIGNAL }),
      marshal({ type: MessageType.METHOD_RETURN, serial: 9, replySerial: 3, destination: ':1.1', signature: 't', body: [1n] }),
    ];
    const be = Buffer.from(marshal({ ...hotCallObject(r), ...base }));
    be[0] = 0x42; // 'B': the same bytes read big endian are another message
    cases.push(be);
    const v2 = Buffer.from(marshal({ ...hotCallObject(r), ...base }));
    v2[3] = 2;
    cases.push(v2);
    for (const c of cases) expect(decodeHotCall(c, 0, c.length)).toBeNull();
  });
});

describe('hostile input', () => {
  function mutate(r: Rng, src: Buffer): Buffer {
    const b = Buffer.from(src);
    switch (r.int(0, 6)) {
      case 0: // flip bits
        for (let k = r.int(1, 4); k > 0; k--) {
          const at = r.int(0, b.length - 1);
          b[at] = (b[at] as number) ^ (1 << r.int(0, 7));
        }
        return b;
      case 1: // random bytes somewhere
        for (let k = r.int(1, 8); k > 0; k--) b[r.int(0, b.length - 1)] = r.int(0, 255);
        return b;
      case 2: // truncated
        return b.subarray(0, r.int(0, b.length - 1));
      case 3: // extended with garbage
        return Buffer.concat([b, r.bytes(r.int(1, 64))]);
      case 4: // a length field rewritten (header-field array or body)
        b.writeUInt32LE(r.pick([0, 1, 7, 8, 0x7fffffff, 0xffffffff, r.int(0, 4096), b.length]), r.pick([4, 12]));
        return b;
      case 5: // a string length inside the header rewritten
        if (b.length > 28) b.writeUInt32LE(r.pick([0, 1, 0xffffffff, r.int(0, 300)]), 4 * r.int(4, Math.floor((b.length - 4) / 4)));
        return b;
      default: // pure garbage
        return r.bytes(r.int(0, 300));
    }
  }

  it('never throws, never claims a frame dbus-next decodes otherwise', () => {
    const r = rng(7);
    let taken = 0;
    for (let i = 0; i < N * 4; i++) {
      const src = marshal(r.next() < 0.6 ? hotCallObject(r) : otherMessageObject(r));
      const b = mutate(r, src);
      let n: number;
      expect(() => (n = frameLength(b, 0, b.length))).not.toThrow();
      n = frameLength(b, 0, b.length);
      if (b.length < 16) expect(n).toBe(NEED_MORE);
      else if (n !== BROKEN) expect(n).toBe(dbusNextFrameLength(b));
      // Whatever length the caller believes, decoding stays inside the buffer and never throws.
      for (const len of [b.length, n, r.int(0, b.length + 8)]) {
        expect(() => decodeHotCall(b, 0, len)).not.toThrow();
        expect(() => decodeHotCall(b, r.int(0, 20), len)).not.toThrow();
      }
      if (n === b.length) {
        if (decodeHotCall(b, 0, n)) taken++;
        expectAgreesWithDbusNext(b);
      }
    }
    expect(taken).toBeGreaterThan(N / 10); // the mutations leave many hot calls intact
  });

  it('refuses lengths no bus sends instead of guessing', () => {
    const h = Buffer.alloc(16);
    h[0] = 0x6c;
    expect(frameLength(h, 0, 16)).toBe(BROKEN); // no fields, no body
    h.writeUInt32LE(0xffffffff, 12);
    expect(frameLength(h, 0, 16)).toBe(BROKEN);
    h.writeUInt32LE(8, 12);
    h.writeUInt32LE(0x80000000, 4);
    expect(frameLength(h, 0, 16)).toBe(BROKEN);
    h.writeUInt32LE(100, 4);
    expect(frameLength(h, 0, 16)).toBe(16 + 8 + 100);
    expect(frameLength(h, 0, 15)).toBe(NEED_MORE);
  });
});
