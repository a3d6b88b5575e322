// A tiny D-Bus codec for the daemon's two hot messages, and nothing else:
//
//   in:  a bodyless little-endian METHOD_CALL (NextTick, GetTick) with only the header fields a
//        bus sends (PATH, INTERFACE, MEMBER, DESTINATION, SENDER, SIGNATURE)
//   out: its METHOD_RETURN carrying one `t`
//
// dbus-next stays the D-Bus library: everything this codec does not recognise exactly is left to
// dbus-next's own decoder (decodeHotCall returns null), and the reply it writes is byte for byte
// what dbus-next's marshallMessage writes for Message.newMethodReturn(call, 't', [tick]) (proved
// by test/unit/fast-codec.test.ts). Framing follows dbus-next's own rule (16-byte fixed header,
// header-field array padded to 8, body), so a frame boundary is where dbus-next would put it.
//
// None of these functions throws on any input.

import * as validators from 'dbus-next/lib/validators.js';

/** 'l': little endian. dbus-next reads every other byte as big endian. */
export const LITTLE_ENDIAN = 0x6c;
export const METHOD_CALL = 1;
export const METHOD_RETURN = 2;

/** Limits of the D-Bus specification: a whole message, and the header-field array. */
export const MAX_MESSAGE_BYTES = 128 * 1024 * 1024;
export const MAX_FIELDS_BYTES = 64 * 1024 * 1024;

/** frameLength(): fewer than 16 bytes so far. */
export const NEED_MORE = -1;
/** frameLength(): a header no bus sends (lengths beyond the spec, or an empty frame). */
export const BROKEN = -2;

/**
 * The length of the message that starts at `off`, from its fixed header, computed as dbus-next's
 * stream parser does: 16 + pad8(header-field array length) + body length, in the byte order named
 * by the first byte. NEED_MORE if fewer than 16 bytes are available; BROKEN for lengths no
 * compliant bus produces (beyond the spec's limits, or no header fields and no body: dbus-next
 * would wait forever on such a frame).
 */
export function frameLength(buf: Uint8Array, off: number, avail: number): number {
  if (avail < 16) return NEED_MORE;
  const le = buf[off] === LITTLE_ENDIAN;
  const fields = le ? u32le(buf, off + 12) : u32be(buf, off + 12);
  const body = le ? u32le(buf, off + 4) : u32be(buf, off + 4);
  if (fields > MAX_FIELDS_BYTES || body > MAX_MESSAGE_BYTES) return BROKEN;
  const total = 16 + ((fields + 7) & ~7) + body;
  if (total === 16 || total > MAX_MESSAGE_BYTES) return BROKEN;
  return total;
}

/** A hot call as dbus-next would present it (type, flags, serial and header fields; no body). */
export interface HotCall {
  type: 1;
  flags: number;
  serial: number;
  path: string;
  interface: string | undefined;
  member: string;
  destination: string | undefined;
  sender: string | undefined;
  signature: '';
  body: [];
}

function u32le(b: Uint8Array, o: number): number {
  return ((b[o] as number) | ((b[o + 1] as number) << 8) | ((b[o + 2] as number) << 16)) + (b[o + 3] as number) * 0x1000000;
}
function u32be(b: Uint8Array, o: number): number {
  return (b[o] as number) * 0x1000000 + (((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number));
}

// Header field codes and the one type signature each may carry in a hot call.
const F_PATH = 1;
const F_INTERFACE = 2;
const F_MEMBER = 3;
const F_DESTINATION = 6;
const F_SENDER = 7;
const F_SIGNATURE = 8;
const CH_O = 0x6f;
const CH_S = 0x73;
const CH_G = 0x67;
const FIELD_TYPE: Record<number, number> = {
  [F_PATH]: CH_O,
  [F_INTERFACE]: CH_S,
  [F_MEMBER]: CH_S,
  [F_DESTINATION]: CH_S,
  [F_SENDER]: CH_S,
  [F_SIGNATURE]: CH_G,
};

/**
 * Decodes the message at buf[off, off+len) if, and only if, it is a bodyless little-endian
 * METHOD_CALL (protocol version 1, non-zero serial) whose header holds PATH and MEMBER, optionally
 * INTERFACE, DESTINATION, SENDER and an empty SIGNATURE, each once, each with its standard type,
 * each within the header-field array. Anything else returns null: the caller hands the frame to
 * dbus-next. `len` must be frameLength()'s answer for this frame.
 */
export function decodeHotCall(buf: Buffer, off: number, len: number): HotCall | null {
  if (len < 16 || off < 0 || off + len > buf.length) return null;
  if (buf[off] !== LITTLE_ENDIAN || buf[off + 1] !== METHOD_CALL || buf[off + 3] !== 1) return null;
  if (u32le(buf, off + 4) !== 0) return null; // a body: not ours
  const serial = u32le(buf, off + 8);
  if (serial === 0) return null;
  const fieldsLen = u32le(buf, off + 12);
  const end = off + 16 + fieldsLen;
  if (end > off + len) return null;

  let path: string | undefined;
  let iface: string | undefined;
  let member: string | undefined;
  let destination: string | undefined;
  let sender: string | undefined;
  let seen = 0;
  let p = off + 16;
  while (p < end) {
    // Each (yv) struct starts on an 8-byte boundary of the message.
    p = off + ((p - off + 7) & ~7);
    if (p + 4 > end) return null;
    const code = buf[p] as number;
    const want = FIELD_TYPE[code];
    // The variant's signature: exactly one character, then its NUL.
    if (want === undefined || buf[p + 1] !== 1 || buf[p + 2] !== want || buf[p + 3] !== 0) return null;
    if (seen & (1 << code)) return null; // twice: dbus-next would keep the last, we keep out
    seen |= 1 << code;
    p += 4;
    if (want === CH_G) {
      const n = buf[p] as number;
      if (n !== 0 || p + 2 > end || buf[p + 1] !== 0) return null; // only the empty signature
      p += 2;
      continue;
    }
    p = off + ((p - off + 3) & ~3);
    if (p + 4 > end) return null;
    const n = u32le(buf, p);
    p += 4;
    if (n > end - p - 1 || buf[p + n] !== 0) return null;
    const s = buf.toString('utf8', p, p + n); // as dbus-next's readString
    p += n + 1;
    switch (code) {
      case F_PATH:
        path = s;
        break;
      case F_INTERFACE:
        iface = s;
        break;
      case F_MEMBER:
        member = s;
        break;
      case F_DESTINATION:
        destination = s;
        break;
      case F_SENDER:
        sender = s;
        break;
    }
  }
  if (p !== end || path === undefined || member === undefined) return null;
  // dbus-next treats empty strings as absent header fields; so do we, by not taking them.
  if (path === '' || member === '' || iface === '' || destination === '' || sender === '') return null;
  // dbus-next's Message constructor rejects (drops, with an 'error' event) invalid names.
  if (!valid(path, validPath) || !valid(member, validMember)) return null;
  if (iface !== undefined && !valid(iface, validInterface)) return null;
  if (destination !== undefined && !valid(destination, validBusName)) return null;
  return {
    type: METHOD_CALL,
    flags: buf[off + 2] as number,
    serial,
    path,
    interface: iface,
    member,
    destination,
    sender,
    signature: '',
    body: [],
  };
}

/** dbus-next's validators, each remembering the last string it passed (calls repeat them). */
function cachedValidator(test: (s: string) => boolean): { last: string | null; test: (s: string) => boolean } {
  return { last: null, test };
}
const validPath = cachedValidator(validators.isObjectPathValid);
const validMember = cachedValidator(validators.isMemberNameValid);
const validInterface = cachedValidator(validators.isInterfaceNameValid);
const validBusName = cachedValidator(validators.isBusNameValid);
function valid(s: string, v: { last: string | null; test: (s: string) => boolean }): boolean {
  if (s === v.last) return true;
  let ok = false;
  try {
    ok = v.test(s) === true;
  } catch {
    ok = false;
  }
  if (ok) v.last = s;
  return ok;
}

const MAX_U64 = 0xffffffffffffffffn;

/**
 * The METHOD_RETURN dbus-next marshals for Message.newMethodReturn(call, 't', [value]) sent with
 * `serial`: header fields REPLY_SERIAL, DESTINATION (when `destination` is non-empty) and
 * SIGNATURE 't', in that order, then the u64. Returns null where dbus-next would behave
 * differently or refuse (serial or replySerial not in 1..2^32-1, value not a bigint in range).
 */
export function encodeReturnT(serial: number, replySerial: number, destination: string | undefined, value: bigint): Buffer | null {
  if (!isU32NonZero(serial) || !isU32NonZero(replySerial)) return null;
  if (typeof value !== 'bigint' || value < 0n || value > MAX_U64) return null;
  if (destination !== undefined && typeof destination !== 'string') return null;
  const destLen = destination ? Buffer.byteLength(destination, 'utf8') : 0;
  // 16 fixed; REPLY_SERIAL 8 bytes; DESTINATION 8 + len + 1, padded; SIGNATURE 4 + 3.
  let p = 24;
  if (destination) p = (p + 8 + destLen + 1 + 7) & ~7;
  const fieldsEnd = p + 7;
  const bodyAt = (fieldsEnd + 7) & ~7;
  const out = Buffer.alloc(bodyAt + 8);
  out[0] = LITTLE_ENDIAN;
  out[1] = METHOD_RETURN;
  out[2] = 0;
  out[3] = 1;
  out.writeUInt32LE(8, 4);
  out.writeUInt32LE(serial, 8);
  out.writeUInt32LE(fieldsEnd - 16, 12);
  out[16] = 5; // REPLY_SERIAL, variant 'u'
  out[17] = 1;
  out[18] = 0x75;
  out.writeUInt32LE(replySerial, 20);
  if (destination) {
    out[24] = 6; // DESTINATION, variant 's'
    out[25] = 1;
    out[26] = CH_S;
    out.writeUInt32LE(destLen, 28);
    out.write(destination, 32, destLen, 'utf8');
  }
  out[p] = 8; // SIGNATURE, variant 'g' = "t"
  out[p + 1] = 1;
  out[p + 2] = CH_G;
  out[p + 4] = 1;
  out[p + 5] = 0x74;
  out.writeBigUInt64LE(value, bodyAt);
  return out;
}

function isU32NonZero(n: number): boolean {
  return Number.isInteger(n) && n > 0 && n <= 0xffffffff;
}
