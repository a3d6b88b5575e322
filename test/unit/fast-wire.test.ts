// The fast path's framing, its fallback into dbus-next's own decoder, and the socket takeover.
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import * as dbusMessage from 'dbus-next/lib/message.js';
import * as marshallCompat from 'dbus-next/lib/marshall-compat.js';
import { Framer } from '../../src/dbus/fast/framer.js';
import { FastPath, makeFeeder } from '../../src/dbus/fast/wire.js';
import { isChronosHotCall } from '../../src/dbus/fast/index.js';
import { Message, dbusNextDecode, hotCallObject, marshal, otherMessageObject, rng, type Rng } from './fast-helpers.js';

const N = Number(process.env.FAST_TEST_ITERATIONS ?? 3000);

function randomStream(r: Rng, count: number): Buffer[] {
  return Array.from({ length: count }, () => marshal(r.next() < 0.5 ? hotCallObject(r) : otherMessageObject(r)));
}

function chunks(r: Rng, all: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < all.length; ) {
    const n = r.pick([1, 2, 7, 16, 17, r.int(1, 64), r.int(1, 4096), all.length]);
    out.push(all.subarray(off, off + n));
    off += n;
  }
  return out;
}

describe('Framer', () => {
  it('cuts any chunking of a message stream exactly where dbus-next does', () => {
    const r = rng(11);
    for (let i = 0; i < N / 10; i++) {
      const frames = randomStream(r, r.int(1, 30));
      const all = Buffer.concat(frames);
      const got: Buffer[] = [];
      const f = new Framer(
        (b, off, len) => got.push(Buffer.from(b.subarray(off, off + len))),
        (why) => {
          throw new Error(why);
        },
      );
      for (const c of chunks(r, all)) f.push(c);
      expect(got).toEqual(frames);
      expect(f.pending).toBe(0);
      // dbus-next's parser finds the same messages in the same bytes.
      const ref = dbusNextDecode(all);
      expect(ref.error).toBeNull();
      expect(ref.messages.map((m) => m.serial)).toEqual(frames.map((b) => b.readUInt32LE(8)));
    }
  });

  it('never throws on garbage, loses no byte, and stops at the first unframeable header', () => {
    const r = rng(12);
    for (let i = 0; i < N; i++) {
      const parts = randomStream(r, r.int(0, 5));
      parts.splice(r.int(0, parts.length), 0, r.bytes(r.int(0, 200)));
      const all = Buffer.concat(parts);
      const got: Buffer[] = [];
      let broken = 0;
      const f = new Framer(
        (b, off, len) => got.push(Buffer.from(b.subarray(off, off + len))),
        () => broken++,
      );
      expect(() => {
        for (const c of chunks(r, all)) f.push(c);
      }).not.toThrow();
      expect(broken).toBeLessThanOrEqual(1);
      const framed = Buffer.concat(got);
      // What was handed on is exactly the start of the input, frame by frame.
      expect(all.subarray(0, framed.length).equals(framed)).toBe(true);
      if (!broken) expect(framed.length + f.pending).toBe(all.length);
    }
  });
});

describe('makeFeeder (dbus-next decoding, one whole message at a time)', () => {
  it('emits the same messages dbus-next emits, in order, and errors instead of throwing', () => {
    const r = rng(13);
    const conn = new EventEmitter();
    const seen: unknown[] = [];
    const errors: unknown[] = [];
    conn.on('message', (m) => seen.push(m));
    conn.on('error', (e) => errors.push(e));
    const feed = makeFeeder(conn);
    for (let i = 0; i < N / 3; i++) {
      const frame = marshal(otherMessageObject(r));
      const before = seen.length;
      expect(feed(frame)).toBe(true);
      const ref = dbusNextDecode(frame);
      expect(seen.slice(before)).toEqual(ref.messages);
    }
    expect(errors).toEqual([]);
    // A message whose fields dbus-next cannot decode: an error event, no exception.
    const bad = marshal(otherMessageObject(r));
    bad.fill(0xff, 16, 24);
    expect(() => feed(bad)).not.toThrow();
    expect(errors.length).toBe(1);
    // ...and the decoder is still in step for the next message.
    const next = marshal(hotCallObject(r));
    const before = seen.length;
    expect(feed(next)).toBe(true);
    expect(seen.length).toBe(before + 1);
  });
});

// A stand-in for dbus-next's MessageBus around a real socket: its connection runs dbus-next's own
// stream parser on the socket, as lib/connection.js does after the handshake.
function fakeBus(sock: net.Socket) {
  // dbus-next's connection.message(): marshal and write.
  const conn = Object.assign(new EventEmitter(), {
    stream: sock,
    message: (msg: unknown) => sock.write(marshallCompat.marshallMessage(msg as object)[0]),
  });
  dbusMessage.unmarshalMessages(sock, (raw) => conn.emit('message', new Message(marshallCompat.messageToJsFmt(raw) as never)));
  const stock: Array<{ serial: number; member?: string; type: number }> = [];
  const hot: Array<Record<string, unknown>> = [];
  const hotAt: number[] = [];
  const order: string[] = [];
  const handler = (msg: unknown) => {
    const m = msg as { serial: number; member: string; type: number };
    hot.push(m as unknown as Record<string, unknown>);
    hotAt.push(order.length);
    order.push(`${m.serial}`);
    return true;
  };
  let serial = 100;
  const bus = Object.assign(new EventEmitter(), {
    _connection: conn,
    _methodHandlers: [handler],
    _nameOwners: {} as Record<string, string>,
    name: ':1.1',
    newSerial: () => serial++,
    send: () => undefined,
  });
  conn.on('message', (m: { serial: number; member?: string; type: number }) => {
    // MessageBus: method calls go to the handlers first.
    if (m.type === 1 && bus._methodHandlers[0]) return bus._methodHandlers[0](m);
    stock.push(m);
    order.push(`${m.serial}`);
  });
  return { bus, conn, hot, hotAt, stock, order, handler };
}

describe('FastPath on a socket', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  async function pair(): Promise<{ client: net.Socket; server: net.Socket }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-fast-'));
    const sockPath = path.join(dir, 's');
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(sockPath, r));
    const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
    const client = net.createConnection(sockPath);
    await new Promise((r) => client.once('connect', r));
    const server = await accepted;
    cleanups.push(() => {
      client.destroy();
      server.destroy();
      srv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    return { client, server };
  }

  it('takes over at a message boundary: every message once, in order, hot ones to the handler', async () => {
    const r = rng(14);
    const { client, server } = await pair();
    const f = fakeBus(client);
    // Messages before, across and after the takeover, cut into odd pieces.
    const frames = Array.from({ length: 400 }, () =>
      marshal(r.next() < 0.6 ? { ...hotCallObject(r), destination: 'org.jesternet.Chronos', interface: 'org.jesternet.Chronos' } : otherMessageObject(r)),
    );
    // The first third in odd pieces, read by dbus-next (it may stop inside a message).
    const first = Buffer.concat(frames.slice(0, 130));
    const cut = r.int(1, first.length - 1);
    for (const p of chunks(r, first.subarray(0, cut))) server.write(p);
    await new Promise((res) => setTimeout(res, 20));
    const fp = FastPath.attach(f.bus as never, { handler: f.handler as never, isHot: isChronosHotCall });
    expect(fp).not.toBeNull();
    // The rest of that message and the next third whole, one write each (a bus writes so), then
    // the last third in odd pieces again.
    server.write(first.subarray(cut));
    for (const b of frames.slice(130, 260)) {
      server.write(b);
      if (r.next() < 0.2) await new Promise((res) => setImmediate(res));
    }
    for (const p of chunks(r, Buffer.concat(frames.slice(260)))) {
      server.write(p);
      if (r.next() < 0.1) await new Promise((res) => setImmediate(res));
    }
    const expectedSerials = frames.map((b) => String(b.readUInt32LE(8)));
    for (let i = 0; i < 200 && f.order.length < frames.length; i++) await new Promise((res) => setTimeout(res, 10));
    expect(fp!.isActive).toBe(true);
    expect(f.order).toEqual(expectedSerials);
    expect(fp!.stats.hot).toBeGreaterThan(0);
    // Hot calls reach the handler with exactly the fields dbus-next would have decoded.
    for (const [i, h] of f.hot.entries()) {
      const src = frames[f.hotAt[i] as number] as Buffer;
      const ref = dbusNextDecode(src).messages[0] as unknown as Record<string, unknown>;
      for (const k of ['type', 'flags', 'serial', 'path', 'member', 'destination', 'sender']) expect(h[k], k).toEqual(ref[k]);
      expect(h.interface || undefined).toEqual(ref.interface || undefined);
    }
  });

  it('writes replies byte-identical to dbus-next, one writev per turn, in order with stock writes', async () => {
    const r = rng(15);
    const { client, server } = await pair();
    const f = fakeBus(client);
    const fp = FastPath.attach(f.bus as never, { handler: f.handler as never, isHot: isChronosHotCall })!;
    const received: Buffer[] = [];
    server.on('data', (d) => received.push(d));
    const expected: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      const call = { serial: r.u32(), sender: `:1.${r.int(1, 99)}` };
      const v = r.u64();
      const serialBefore = 100 + i;
      expect(fp.sendReturnT(call, v)).toBe(true);
      const ref = Message.newMethodReturn(call as never, 't', [v]);
      ref.serial = serialBefore;
      expected.push(marshal(ref as unknown as Record<string, unknown>));
    }
    // A stock write in the same turn keeps its place, and so do fast replies after it.
    const stock = Message.newError({ serial: 5, sender: ':1.5' } as never, 'org.example.Error', 'text');
    stock.serial = 150;
    const stockBytes = marshal(stock as unknown as Record<string, unknown>);
    (f.conn as unknown as { message: (m: unknown) => void }).message(stock);
    expected.push(stockBytes);
    const after = { serial: 77, sender: ':1.77' };
    expect(fp.sendReturnT(after, 99n)).toBe(true);
    const afterRef = Message.newMethodReturn(after as never, 't', [99n]);
    afterRef.serial = 150;
    expected.push(marshal(afterRef as unknown as Record<string, unknown>));
    const total = Buffer.concat(expected).length;
    for (let i = 0; i < 100 && Buffer.concat(received).length < total; i++) await new Promise((res) => setTimeout(res, 10));
    expect(Buffer.concat(received)).toEqual(Buffer.concat(expected));
    expect(fp.sendReturnT({ serial: 0 }, 1n)).toBe(false);
    expect(fp.sendReturnT({ serial: 1 }, -1n)).toBe(false);
  });

  it('writes gathered replies before a disconnect in the same turn', async () => {
    const { client, server } = await pair();
    const f = fakeBus(client);
    const disconnect = Object.assign(f.bus, { disconnect: () => client.end() });
    const fp = FastPath.attach(disconnect as never, { handler: f.handler as never, isHot: isChronosHotCall })!;
    const received: Buffer[] = [];
    server.on('data', (d) => received.push(d));
    const ended = new Promise((res) => server.once('end', res));
    expect(fp.sendReturnT({ serial: 3, sender: ':1.3' }, 42n)).toBe(true);
    disconnect.disconnect();
    await ended;
    const ref = Message.newMethodReturn({ serial: 3, sender: ':1.3' } as never, 't', [42n]);
    ref.serial = 100;
    expect(Buffer.concat(received)).toEqual(marshal(ref as unknown as Record<string, unknown>));
  });

  it('stays out when the handler is not first, or when someone listens to every message', async () => {
    const r = rng(16);
    const { client, server } = await pair();
    const f = fakeBus(client);
    const fp = FastPath.attach(f.bus as never, { handler: f.handler as never, isHot: isChronosHotCall })!;
    server.write(marshal(otherMessageObject(r))); // lets the takeover happen
    for (let i = 0; i < 50 && !fp.isActive; i++) await new Promise((res) => setTimeout(res, 10));
    expect(fp.isActive).toBe(true);
    const listener = () => undefined;
    f.bus.on('message', listener);
    server.write(marshal({ ...hotCallObject(r), destination: 'org.jesternet.Chronos' }));
    for (let i = 0; i < 50 && f.hot.length < 1; i++) await new Promise((res) => setTimeout(res, 10));
    expect(f.hot.length).toBe(1);
    expect(fp.stats.hot).toBe(0); // it went through dbus-next
    f.bus.removeListener('message', listener);
    // Not for us: another unique name, or a name someone else owns.
    f.bus._nameOwners['org.jesternet.Chronos'] = ':1.7';
    server.write(marshal({ ...hotCallObject(r), destination: 'org.jesternet.Chronos' }));
    server.write(marshal({ ...hotCallObject(r), destination: ':1.9' }));
    server.write(marshal({ ...hotCallObject(r), destination: ':1.1' }));
    for (let i = 0; i < 50 && f.hot.length < 4; i++) await new Promise((res) => setTimeout(res, 10));
    expect(fp.stats.hot).toBe(1); // only the one addressed to our unique name
    expect(fp.stats.fallback).toBeGreaterThanOrEqual(3);
  });

  it('gives the connection up on bytes no bus sends', async () => {
    const { client, server } = await pair();
    const f = fakeBus(client);
    const errors: Error[] = [];
    f.conn.on('error', (e) => errors.push(e));
    const fp = FastPath.attach(f.bus as never, { handler: f.handler as never, isHot: isChronosHotCall })!;
    server.write(marshal(otherMessageObject(rng(17))));
    for (let i = 0; i < 50 && !fp.isActive; i++) await new Promise((res) => setTimeout(res, 10));
    const closed = new Promise((res) => client.once('close', res));
    const junk = Buffer.alloc(16, 0);
    junk[0] = 0x6c;
    junk.writeUInt32LE(0xffffffff, 12);
    server.write(junk);
    await closed;
    expect(errors.length).toBe(1);
    expect(errors[0]?.message).toMatch(/unframeable/);
  });

  it('does not attach to what it does not understand', () => {
    expect(FastPath.attach(new EventEmitter() as never, { handler: () => true, isHot: () => true })).toBeNull();
    const conn = Object.assign(new EventEmitter(), { stream: new EventEmitter() });
    expect(FastPath.attach({ _connection: conn } as never, { handler: () => true, isHot: () => true })).toBeNull();
  });
});
