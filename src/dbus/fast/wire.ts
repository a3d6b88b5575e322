// The daemon's fast path for its hot calls, beside dbus-next on the same connection.
//
// dbus-next stays the D-Bus library: it connects, authenticates, says Hello, owns the name and
// handles every message but the hot ones. Once attached, this module reads the connection's
// socket itself, frames the byte stream by dbus-next's rule (framer.ts), and for each message:
//
//   - a hot call (codec.ts decodeHotCall: bodyless NextTick/GetTick, as the service's isHot says)
//     that dbus-next would hand to the service's method handler goes straight to that handler,
//     as a plain object with the fields dbus-next would have decoded;
//   - anything else is given, whole and in order, to dbus-next's own stream parser and then to
//     the connection's 'message' event exactly as dbus-next does it (the same few lines as
//     dbus-next's connection.js), so the bus and the service see what they always saw.
//
// Replies with one `t` are encoded as codec.ts encodeReturnT does (byte-identical to dbus-next's;
// here from a per-destination template with serial, reply serial and value patched in), gathered
// in one buffer and written with one socket write per event-loop turn. Before dbus-next writes
// anything itself (its connection's message()), the gathered replies go out first, so the byte
// stream is exactly the one dbus-next alone would have written, in the same order.
//
// A hot call whose bytes equal the previous hot call's but for the serial (the usual case: the
// same client calling again) reuses the previous decoding instead of decoding again.
//
// Taking over the socket happens only at a moment where dbus-next's parser provably holds no
// partial message: right after it asked for a 16-byte fixed header and got none. Until then
// everything runs through dbus-next unchanged; if the connection is not a plain net.Socket, or
// anything looks unexpected, attach() returns null and nothing changes at all.

import net from 'node:net';
import { EventEmitter } from 'node:events';
import dbus from 'dbus-next';
import type { Message as DBusMessage, MessageBus } from 'dbus-next';
import * as dbusMessage from 'dbus-next/lib/message.js';
import * as marshallCompat from 'dbus-next/lib/marshall-compat.js';
import { decodeHotCall, encodeReturnT, type HotCall } from './codec.js';
import { Framer } from './framer.js';

const { Message } = dbus;

interface Connection extends EventEmitter {
  stream: net.Socket & { supportsUnixFd?: boolean };
}

/** The parts of dbus-next's MessageBus (0.10.2) whose behaviour the fast path reproduces. */
interface BusInternals {
  _connection: Connection;
  _methodHandlers: Array<(msg: DBusMessage) => boolean>;
  _nameOwners: Record<string, string | undefined>;
  name: string | null;
  newSerial(): number;
  send(msg: DBusMessage): void;
}

export interface FastPathOptions {
  /**
   * The method handler the service gave bus.addMethodHandler. A hot call takes the fast path
   * only while this handler is the first one dbus-next would run.
   */
  handler: (msg: DBusMessage) => boolean;
  /** Which decoded calls take the fast path (the rest go through dbus-next). */
  isHot: (call: HotCall) => boolean;
}

export interface FastPathStats {
  /** Calls that took the fast path. */
  hot: number;
  /** Messages handed to dbus-next's decoder after the takeover. */
  fallback: number;
  /** Replies encoded by the fast encoder. */
  fastReplies: number;
}

export class FastPath {
  readonly stats: FastPathStats = { hot: 0, fallback: 0, fastReplies: 0 };
  private active = false;
  /** Replies gathered this turn: slab[pendingFrom, slabPos) is not written yet. */
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  private pendingFrom = 0;
  private slabPos = 0;
  private flushScheduled = false;
  /** Reply templates by destination (encodeReturnT with serial 1, reply serial 1, value 0). */
  private templates = new Map<string, Buffer>();
  /** The last hot call taken and a copy of its bytes, to recognise a repeat. */
  private lastHot: HotCall | null = null;
  private lastHotBytes: Buffer | null = null;
  private readonly stream: Connection['stream'];
  private readonly conn: Connection;
  private readonly internals: BusInternals;
  private readonly framer: Framer;
  private feedFrame: (frame: Buffer) => boolean;

  private constructor(
    private readonly bus: MessageBus,
    private readonly opts: FastPathOptions,
    private readonly parser: (...args: unknown[]) => void,
  ) {
    this.internals = bus as unknown as BusInternals;
    this.conn = this.internals._connection;
    this.stream = this.conn.stream;
    this.framer = new Framer(this.onFrame, this.onBroken);
    this.feedFrame = makeFeeder(this.conn);
  }

  /**
   * Arms the fast path on a connected bus whose socket dbus-next reads; returns null (and
   * changes nothing) where that is not the case. The takeover itself happens at the next
   * message boundary dbus-next's parser reaches.
   */
  static attach(bus: MessageBus, opts: FastPathOptions): FastPath | null {
    const conn = (bus as unknown as Partial<BusInternals>)._connection;
    const stream = conn?.stream;
    if (!conn || !(stream instanceof net.Socket) || stream.supportsUnixFd) return null;
    if (Object.prototype.hasOwnProperty.call(stream, 'read')) return null;
    if (conn.listenerCount('message') !== 1) return null;
    const readable = stream.listeners('readable');
    if (readable.length !== 1 || stream.destroyed) return null;
    if (typeof (conn as { message?: unknown }).message !== 'function') return null;
    const fp = new FastPath(bus, opts, readable[0] as (...args: unknown[]) => void);
    // Everything dbus-next sends goes through its connection's message(): replies gathered by
    // the fast path are written before it, so the order on the wire is the order of sending.
    const c = conn as unknown as { message: (msg: unknown) => unknown };
    const stockMessage = c.message;
    c.message = function message(this: unknown, msg: unknown) {
      fp.flushPending();
      return stockMessage.call(this, msg);
    };
    // So does closing: MessageBus.disconnect() ends the socket directly.
    const b = bus as unknown as { disconnect?: () => void };
    const stockDisconnect = b.disconnect;
    if (typeof stockDisconnect === 'function') {
      b.disconnect = function disconnect(this: unknown) {
        fp.flushPending();
        return stockDisconnect.call(this);
      };
    }
    fp.arm();
    return fp;
  }

  /** True once the fast path reads the socket. */
  get isActive(): boolean {
    return this.active;
  }

  /**
   * Sends the METHOD_RETURN of `call` with one `t`, as bus.send(Message.newMethodReturn(call,
   * 't', [value])) would. Returns false if the caller should send it the stock way instead.
   * The caller handles NO_REPLY_EXPECTED, as before.
   */
  sendReturnT(call: { serial: number; sender?: string | undefined }, value: bigint): boolean {
    if (typeof value !== 'bigint' || value < 0n || value > 0xffffffffffffffffn) return false;
    if (!Number.isInteger(call.serial) || call.serial <= 0 || call.serial > 0xffffffff) return false;
    const serial = this.internals.newSerial();
    // dbus-next refuses to write to a closed stream; the service drops the reply then.
    if (!this.stream.writable) return true;
    if (!(serial > 0 && serial <= 0xffffffff)) return false;
    const t = this.template(call.sender || '');
    if (t === null) return false;
    const n = t.length;
    if (this.slabPos + n > this.slab.length) {
      this.flushPending();
      this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, n));
      this.pendingFrom = this.slabPos = 0;
    }
    const at = this.slabPos;
    const out = this.slab;
    t.copy(out, at);
    out.writeUInt32LE(serial, at + 8);
    out.writeUInt32LE(call.serial, at + 20);
    out.writeBigUInt64LE(value, at + n - 8);
    this.slabPos = at + n;
    this.stats.fastReplies++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushPending);
    }
    return true;
  }

  private template(destination: string): Buffer | null {
    let t = this.templates.get(destination);
    if (t === undefined) {
      const made = encodeReturnT(1, 1, destination || undefined, 0n);
      if (made === null) return null;
      if (this.templates.size >= MAX_TEMPLATES) this.templates.clear();
      this.templates.set(destination, made);
      t = made;
    }
    return t;
  }

  /** Writes the gathered replies (at the end of the turn, or before dbus-next writes). */
  private readonly flushPending = (): void => {
    this.flushScheduled = false;
    if (this.slabPos === this.pendingFrom) return;
    const chunk = this.slab.subarray(this.pendingFrom, this.slabPos);
    this.pendingFrom = this.slabPos;
    // The written region is never touched again: the slab only fills forward.
    if (this.stream.writable) this.stream.write(chunk);
  };

  // ---- the takeover ----------------------------------------------------------------------

  private arm(): void {
    const stream = this.stream;
    const read = stream.read;
    let headerMissed = false;
    let scheduled = false;
    const trySwitch = () => {
      scheduled = false;
      if (!headerMissed || this.active) return; // the parser read on since: wait for the next miss
      const listeners = stream.listeners('readable');
      // Something else changed the connection: stay out of the way for good.
      if (listeners.length !== 1 || listeners[0] !== this.parser || stream.destroyed) {
        delete (stream as { read?: unknown }).read;
        return;
      }
      delete (stream as { read?: unknown }).read;
      stream.removeListener('readable', this.parser);
      // Flowing mode: each chunk the socket reads comes straight to the framer (bytes still
      // buffered in the stream, fewer than a header, come first, in order).
      stream.on('data', this.onData);
      stream.resume();
      this.active = true;
    };
    // Watches dbus-next's parser: read(16) answered null means it is between messages and
    // nothing of the next one has been taken from the socket.
    (stream as { read: unknown }).read = function observe(this: net.Socket, n?: number, ...rest: unknown[]) {
      const r = (read as (...a: unknown[]) => unknown).call(this, n, ...rest);
      if (n !== 0) headerMissed = n === 16 && r === null;
      if (headerMissed && !scheduled) {
        scheduled = true;
        process.nextTick(trySwitch);
      }
      return r;
    };
  }

  // ---- reading ---------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    this.framer.push(chunk);
  };

  private readonly onFrame = (buf: Buffer, off: number, len: number): void => {
    let call = this.repeatOfLastHot(buf, off, len);
    const repeat = call !== null;
    if (!repeat) call = decodeHotCall(buf, off, len);
    if (call !== null && this.takes(call)) {
      if (!repeat) {
        this.lastHot = { ...call };
        this.lastHotBytes = Buffer.from(buf.subarray(off, off + len));
      }
      this.stats.hot++;
      this.runHot(call);
      return;
    }
    this.stats.fallback++;
    if (!this.feedFrame(off === 0 && len === buf.length ? buf : buf.subarray(off, off + len))) {
      this.onBroken('dbus-next did not consume a whole message');
    }
  };

  private readonly onBroken = (why: string): void => {
    // Only a peer that is not a D-Bus daemon sends this: give up the connection, as the daemon
    // does when the bus goes away.
    this.conn.emit('error', new Error(`fast path: ${why}`));
    this.stream.destroy();
  };

  /**
   * The previous hot call again with another serial: the same bytes but for the serial field
   * (offsets 8-11), hence the same decoding. A fresh object, as a fresh decode would give.
   */
  private repeatOfLastHot(buf: Buffer, off: number, len: number): HotCall | null {
    const last = this.lastHot;
    const bytes = this.lastHotBytes;
    if (last === null || bytes === null || bytes.length !== len) return null;
    if (buf.compare(bytes, 12, len, off + 12, off + len) !== 0 || buf.compare(bytes, 0, 8, off, off + 8) !== 0) return null;
    const serial = buf.readUInt32LE(off + 8);
    if (serial === 0) return null;
    return {
      type: last.type,
      flags: last.flags,
      serial,
      path: last.path,
      interface: last.interface,
      member: last.member,
      destination: last.destination,
      sender: last.sender,
      signature: '',
      body: [],
    };
  }

  /** Would dbus-next's MessageBus hand this call to the service's handler first? */
  private takes(call: HotCall): boolean {
    const bus = this.internals;
    if (bus._methodHandlers[0] !== this.opts.handler) return false;
    // Listeners of the bus's 'message' event (none in the daemon) see every message.
    if (this.bus.listenerCount('message') > 0 || this.conn.listenerCount('message') !== 1) return false;
    // MessageBus's own filter for messages not meant for this connection.
    const dest = call.destination;
    if (bus.name && dest) {
      if (dest[0] === ':' && dest !== bus.name) return false;
      const owner = bus._nameOwners[dest];
      if (owner && owner !== bus.name) return false;
    }
    return this.opts.isHot(call);
  }

  private runHot(call: HotCall): void {
    try {
      this.opts.handler(call as unknown as DBusMessage);
    } catch (e) {
      // As dbus-next's MessageBus does for a handler that throws.
      try {
        this.internals.send(
          Message.newError(call as unknown as string, 'com.github.dbus_next.Error', `The DBus library encountered an error.\n${(e as Error)?.stack}`),
        );
      } catch {
        // the connection is gone
      }
    }
  }

}

const SLAB_BYTES = 64 * 1024;
const MAX_TEMPLATES = 256;

/**
 * dbus-next's own stream parser, run on a stand-in stream that holds one whole message at a
 * time, delivering to the connection exactly as dbus-next's connection.js does. Returns false
 * if the parser did not take the message whole (its state would be off).
 */
export function makeFeeder(conn: EventEmitter): (frame: Buffer) => boolean {
  let cur: Buffer | null = null;
  let pos = 0;
  const standIn = Object.assign(new EventEmitter(), {
    read(n: number): Buffer | null {
      if (cur === null || !(n > 0) || cur.length - pos < n) return null;
      const r = cur.subarray(pos, pos + n);
      pos += n;
      return r;
    },
  });
  dbusMessage.unmarshalMessages(standIn, (raw) => {
    // dbus-next 0.10.2 lib/connection.js, afterHandshake():
    let message: DBusMessage;
    try {
      message = new Message(marshallCompat.messageToJsFmt(raw) as never);
    } catch (err) {
      conn.emit('error', err, `There was an error receiving a message (this is probably a bug in dbus-next): ${String(raw)}`);
      return;
    }
    conn.emit('message', message);
  });
  const parse = standIn.listeners('readable')[0] as () => void;
  return (frame: Buffer): boolean => {
    cur = frame;
    pos = 0;
    try {
      parse();
    } catch (err) {
      // dbus-next's decoder threw on a malformed message (its parser state is already reset):
      // on its own socket that would have been an uncaught exception.
      conn.emit('error', err);
    }
    const whole = pos === frame.length;
    cur = null;
    return whole;
  };
}
