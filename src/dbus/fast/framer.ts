// Splits a D-Bus byte stream into whole messages, by dbus-next's own framing rule (codec.ts
// frameLength). Chunks may cut messages anywhere; a message is handed on only once all of its
// bytes are there, as one contiguous Buffer view. Never throws on any input: a header no bus
// sends (lengths beyond the spec) stops the framer and reports it once.

import { BROKEN, NEED_MORE, frameLength } from './codec.js';

export type FrameSink = (buf: Buffer, off: number, len: number) => void;

export class Framer {
  /** Bytes of an incomplete message, in arrival order. */
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** Total length of the incomplete message, once its fixed header is known; else 0. */
  private want = 0;
  private broken = false;

  constructor(
    private readonly onFrame: FrameSink,
    private readonly onBroken: (why: string) => void,
  ) {}

  get isBroken(): boolean {
    return this.broken;
  }

  /** Bytes held for an incomplete message. */
  get pending(): number {
    return this.partsLen;
  }

  push(chunk: Buffer): void {
    if (this.broken || chunk.length === 0) return;
    let buf = chunk;
    if (this.partsLen > 0) {
      this.parts.push(chunk);
      this.partsLen += chunk.length;
      if (this.want === 0 && this.partsLen >= 16) {
        const head = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.partsLen);
        const n = frameLength(head, 0, head.length);
        if (n === BROKEN) return this.fail(head, 0);
        this.want = n;
        this.parts = [head];
      }
      if (this.want === 0 || this.partsLen < this.want) return;
      buf = Buffer.concat(this.parts, this.partsLen);
      this.parts = [];
      this.partsLen = 0;
      this.want = 0;
    }
    let off = 0;
    const end = buf.length;
    while (off < end) {
      const n = frameLength(buf, off, end - off);
      if (n === NEED_MORE) break;
      if (n === BROKEN) return this.fail(buf, off);
      if (off + n > end) {
        this.want = n;
        break;
      }
      this.onFrame(buf, off, n);
      if (this.broken) return;
      off += n;
    }
    if (off < end) {
      this.parts = [off === 0 ? buf : buf.subarray(off)];
      this.partsLen = end - off;
    }
  }

  private fail(buf: Buffer, off: number): void {
    this.broken = true;
    this.parts = [];
    this.partsLen = 0;
    this.want = 0;
    const head = buf.subarray(off, off + 16).toString('hex');
    this.onBroken(`unframeable D-Bus message header ${head}`);
  }
}
