// The tick file: one ASCII decimal number and a newline, the last tick made durable.
//
// Write method (see README "The tick file"): steady state is an in-place overwrite at
// offset 0 followed by fdatasync. The value only grows, so the new content is never shorter
// than the old one and a single write of at most 21 bytes lands inside one disk sector:
// after a crash the file holds either the old or the new complete value. Whenever that
// reasoning does not hold (first creation, the file was removed or replaced, the previous
// write failed) the file is replaced atomically instead: temp file, fdatasync, rename,
// fsync of the directory. The file is opened per write and closed again, so no descriptor
// pins a removed file or blocks a read-only remount; faults show up as errors, not as
// ticks silently written to a ghost inode. Only a file that is gone is re-created: one that
// cannot be opened (read-only file system, permissions, a symlink) is an error to report, not
// to work around behind the operator's back.
//
// No stat between writes: in the daemon an fstat before each write made the following
// fdatasync 60-80 us slower (190 against 125 us, Linux 6.18, ext4; BENCHMARKS.md). Whether
// the file grew behind our back is told by reading one byte past our value instead.
import fs from 'node:fs';
import path from 'node:path';

export const MAX_TICK = 2n ** 64n - 1n;

/** The file exists but does not hold a valid tick. The daemon refuses to start. */
export class TickFileCorruptError extends Error {
  override readonly name = 'TickFileCorruptError';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** A write or flush failed: nothing new was made durable. */
export class TickFileWriteError extends Error {
  override readonly name = 'TickFileWriteError';
  constructor(
    readonly file: string,
    readonly code: string,
    detail: string,
  ) {
    super(`cannot make ${file} durable: ${detail}`);
  }
}

const ASCII_WS = /^[ \t\n\r\v\f]*([0-9]+)[ \t\n\r\v\f]*$/;

/** Parses the file's text as the reference daemon writes it; leading zeros and ASCII whitespace are allowed. */
export function parseTickText(text: string): bigint {
  if (text.length === 0) throw new Error('file is empty');
  const m = ASCII_WS.exec(text);
  if (!m) {
    if (/^[ \t\n\r\v\f]*$/.test(text)) throw new Error('file holds only whitespace');
    if (/^[ \t\n\r\v\f]*-[0-9]+[ \t\n\r\v\f]*$/.test(text)) throw new Error('tick is negative');
    throw new Error('not a decimal number');
  }
  const digits = m[1] as string;
  // A length check first keeps BigInt from parsing a megabyte of zeros slowly.
  const trimmed = digits.replace(/^0+(?=.)/, '');
  if (trimmed.length > 20) throw new Error('tick exceeds 2^64-1');
  const value = BigInt(trimmed);
  if (value > MAX_TICK) throw new Error('tick exceeds 2^64-1');
  return value;
}

export function formatTickText(value: bigint): string {
  return `${value}\n`;
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? 'EIO';
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ? `${e.code} (${e.syscall ?? 'io'})` : String(e?.message ?? err);
}

/**
 * The flush (fdatasync) runs on the main thread: on the disks measured, a trip through libuv's
 * thread pool adds 50-70 us to a flush of 120-200 us, and the replies of the previous batch
 * are already on their way, so nothing useful waits behind it (BENCHMARKS.md). A flush that
 * takes longer than this (a slow or stalled disk) moves the following flushes to the thread
 * pool, so that GetTick, properties and Shutdown keep answering while NextTick waits for the
 * disk; the first flush that is fast again moves them back.
 */
export const SLOW_FLUSH_MS = 5;

// A tick file is small; refuse to slurp a huge file someone put in its place.
const MAX_FILE_BYTES = 4096;

export class TickFile {
  readonly path: string;
  private readonly dir: string;
  private readonly tmpPath: string;
  /** False until the file on disk is known to be in our canonical form (it was read so, or we wrote it). */
  private clean = false;
  /** The last flush was slow: flush in the thread pool instead of blocking the main thread. */
  private poolFlush = false;
  private openFlags = fs.constants.O_RDWR | fs.constants.O_NOFOLLOW | fs.constants.O_NOATIME;
  private readonly probe = Buffer.alloc(1);

  private readonly slowFlushMs: number;

  /** `slowFlushMs`: how long a flush may block the main thread before flushes move to the pool. */
  constructor(file: string, options: { slowFlushMs?: number } = {}) {
    this.slowFlushMs = options.slowFlushMs ?? SLOW_FLUSH_MS;
    this.path = path.resolve(file);
    this.dir = path.dirname(this.path);
    this.tmpPath = `${this.path}.tmp`;
  }

  /**
   * Reads the durable tick, creating the directory (0700) and the file (0600, holding 0) when
   * missing. Throws TickFileCorruptError, without touching the file, if it holds anything else.
   */
  open(): bigint {
    let text: string;
    try {
      const fd = fs.openSync(this.path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const st = fs.fstatSync(fd);
        if (!st.isFile()) throw new TickFileCorruptError(this.path, 'not a regular file');
        if (st.size > MAX_FILE_BYTES) throw new TickFileCorruptError(this.path, `file is ${st.size} bytes, not a tick`);
        text = fs.readFileSync(fd, 'latin1');
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      if (err instanceof TickFileCorruptError) throw err;
      if (errnoOf(err) !== 'ENOENT') {
        throw new TickFileCorruptError(this.path, `cannot read: ${describe(err)}`);
      }
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.replaceSync(0n);
      this.clean = true;
      return 0n;
    }
    let value: bigint;
    try {
      value = parseTickText(text);
    } catch (err) {
      throw new TickFileCorruptError(this.path, (err as Error).message);
    }
    // Only a file that is exactly our own format may be overwritten in place.
    this.clean = text === formatTickText(value);
    return value;
  }

  /**
   * Makes `value` durable. Resolves once it is on stable storage; rejects with
   * TickFileWriteError otherwise (the previous durable value then still stands).
   */
  write(value: bigint): Promise<void> {
    if (!this.clean) return this.replace(value);
    const data = Buffer.from(formatTickText(value), 'latin1');
    let fd: number;
    try {
      fd = this.openForWrite();
    } catch (err) {
      // Removed behind our back: re-create it from the durable value we hold (this fails if
      // the directory is gone). Any other refusal is the operator's or the disk's word.
      if (errnoOf(err) === 'ENOENT') return this.replace(value);
      return Promise.reject(this.writeError(err));
    }
    try {
      // Longer than what we write (replaced by someone, or a failed larger write before a
      // renumbering): an overwrite would leave a tail, so replace atomically instead. One byte
      // read past our value tells, where fstat would too but slows the flush (see above).
      if (fs.readSync(fd, this.probe, 0, 1, data.length) !== 0) {
        fs.closeSync(fd);
        return this.replace(value);
      }
      const n = fs.writeSync(fd, data, 0, data.length, 0);
      if (n !== data.length) throw Object.assign(new Error('short write'), { code: 'EIO', syscall: 'write' });
    } catch (err) {
      fs.closeSync(fd);
      return Promise.reject(this.writeError(err));
    }
    // After a failed flush the whole value is written again next time, so a page whose
    // writeback failed cannot linger as a stale "clean" copy.
    const started = performance.now();
    const finish = (syncErr: unknown): TickFileWriteError | null => {
      let failure = syncErr;
      try {
        fs.closeSync(fd);
      } catch (e) {
        failure ??= e;
      }
      this.poolFlush = performance.now() - started > this.slowFlushMs;
      return failure ? this.writeError(failure) : null;
    };
    if (!this.poolFlush) {
      let syncErr: unknown = null;
      try {
        fs.fdatasyncSync(fd);
      } catch (e) {
        syncErr = e;
      }
      const failure = finish(syncErr);
      return failure ? Promise.reject(failure) : Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      fs.fdatasync(fd, (err) => {
        const failure = finish(err);
        if (failure) reject(failure);
        else resolve();
      });
    });
  }

  /** Where the flushes run now: 'main' (the event loop's thread) or 'pool' (after a slow flush). */
  get flushThread(): 'main' | 'pool' {
    return this.poolFlush ? 'pool' : 'main';
  }

  private writeError(err: unknown): TickFileWriteError {
    return new TickFileWriteError(this.path, errnoOf(err), describe(err));
  }

  // Read-write for the one-byte probe; O_NOATIME so that the probe does not dirty the inode
  // (it needs the file's owner, which the daemon is; otherwise it is dropped).
  private openForWrite(): number {
    try {
      return fs.openSync(this.path, this.openFlags);
    } catch (err) {
      if (errnoOf(err) !== 'EPERM' || (this.openFlags & fs.constants.O_NOATIME) === 0) throw err;
      this.openFlags &= ~fs.constants.O_NOATIME;
      return fs.openSync(this.path, this.openFlags);
    }
  }

  private replace(value: bigint): Promise<void> {
    try {
      this.replaceSync(value);
      this.clean = true;
      return Promise.resolve();
    } catch (err) {
      this.clean = false;
      return Promise.reject(this.writeError(err));
    }
  }

  // Atomic replace. Synchronous on purpose: it runs only at creation and after a fault.
  private replaceSync(value: bigint): void {
    const data = Buffer.from(formatTickText(value), 'latin1');
    const fd = fs.openSync(
      this.tmpPath,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW,
      0o600,
    );
    try {
      fs.fchmodSync(fd, 0o600);
      if (fs.writeSync(fd, data, 0, data.length, 0) !== data.length) {
        throw Object.assign(new Error('short write'), { code: 'EIO', syscall: 'write' });
      }
      fs.fdatasyncSync(fd);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(this.tmpPath, { force: true });
      throw err;
    }
    fs.closeSync(fd);
    try {
      fs.renameSync(this.tmpPath, this.path);
    } catch (err) {
      fs.rmSync(this.tmpPath, { force: true });
      throw err;
    }
    const dfd = fs.openSync(this.dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  }
}
