import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_TICK, TickFile, TickFileCorruptError, TickFileWriteError, parseTickText } from '../../src/engine/tick-file.js';
import { tempDir } from '../helpers/bus.js';

describe('parseTickText', () => {
  it.each([
    ['0\n', 0n],
    ['41\n', 41n],
    ['41', 41n],
    ['  0041 \n\n', 41n],
    ['\t7\r\n', 7n],
    ['18446744073709551615\n', MAX_TICK],
    ['000000000000000000000000018446744073709551615', MAX_TICK],
  ])('accepts %j', (text, value) => {
    expect(parseTickText(text)).toBe(value);
  });

  it.each([
    ['', /empty/],
    ['\n  \n', /whitespace/],
    ['-1\n', /negative/],
    ['18446744073709551616\n', /2\^64-1/],
    ['99999999999999999999999\n', /2\^64-1/],
    ['12abc\n', /not a decimal/],
    ['1 2\n', /not a decimal/],
    ['0x10\n', /not a decimal/],
    ['+5\n', /not a decimal/],
    ['5\u00a0\n', /not a decimal/],
    ['garbage', /not a decimal/],
  ])('rejects %j', (text, why) => {
    expect(() => parseTickText(text)).toThrow(why);
  });
});

describe('TickFile', () => {
  it('creates missing directories 0700 and the file 0600 holding 0', () => {
    const dir = tempDir();
    const file = path.join(dir, 'a', 'b', 'tick.dat');
    const tf = new TickFile(file);
    expect(tf.open()).toBe(0n);
    expect(fs.readFileSync(file, 'utf8')).toBe('0\n');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'a')).mode & 0o777).toBe(0o700);
  });

  it('carries over a file in the reference format and writes the same format', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    fs.writeFileSync(file, '41\n');
    const tf = new TickFile(file);
    expect(tf.open()).toBe(41n);
    await tf.write(42n);
    expect(fs.readFileSync(file, 'utf8')).toBe('42\n');
    await tf.write(100n);
    expect(fs.readFileSync(file, 'utf8')).toBe('100\n');
  });

  it('overwrites in place in steady state (same inode)', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    const tf = new TickFile(file);
    tf.open();
    const ino = fs.statSync(file).ino;
    for (let v = 1n; v <= 120n; v++) await tf.write(v);
    expect(fs.statSync(file).ino).toBe(ino);
    expect(fs.readFileSync(file, 'utf8')).toBe('120\n');
  });

  it('flushes on the main thread while flushes are fast, in the thread pool after a slow one, with the same result', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    const fast = new TickFile(file, { slowFlushMs: 60_000 });
    fast.open();
    const ino = fs.statSync(file).ino;
    for (let v = 1n; v <= 20n; v++) await fast.write(v);
    expect(fast.flushThread).toBe('main');
    expect(fs.readFileSync(file, 'utf8')).toBe('20\n');
    // Every flush counts as slow: from the second write on they run in the pool.
    const slow = new TickFile(file, { slowFlushMs: -1 });
    expect(slow.open()).toBe(20n);
    await slow.write(21n);
    expect(slow.flushThread).toBe('pool');
    for (let v = 22n; v <= 40n; v++) await slow.write(v);
    expect(slow.flushThread).toBe('pool');
    expect(fs.readFileSync(file, 'utf8')).toBe('40\n');
    expect(fs.statSync(file).ino).toBe(ino);
  });

  it('rewrites a non-canonical file atomically (leading zeros, whitespace) on the first write', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    fs.writeFileSync(file, '  000041  \n');
    const tf = new TickFile(file);
    expect(tf.open()).toBe(41n);
    await tf.write(42n);
    expect(fs.readFileSync(file, 'utf8')).toBe('42\n');
  });

  it('refuses a corrupt file and leaves it untouched', () => {
    for (const content of ['', 'garbage\n', '-3\n', '18446744073709551616\n', '\u0000\u0000']) {
      const file = path.join(tempDir(), 'tick.dat');
      fs.writeFileSync(file, content);
      fs.utimesSync(file, 1000, 1000);
      const before = fs.statSync(file);
      let err: unknown;
      try {
        new TickFile(file).open();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TickFileCorruptError);
      expect((err as Error).message).toContain(file);
      expect(fs.readFileSync(file, 'utf8')).toBe(content);
      const after = fs.statSync(file);
      expect(after.mtimeMs).toBe(before.mtimeMs);
      expect(after.ino).toBe(before.ino);
      expect(fs.readdirSync(path.dirname(file))).toEqual(['tick.dat']);
    }
  });

  it('refuses a directory or an oversized file in its place', () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'tick.dat'));
    expect(() => new TickFile(path.join(dir, 'tick.dat')).open()).toThrow(TickFileCorruptError);
    const big = path.join(tempDir(), 'tick.dat');
    fs.writeFileSync(big, '1'.padStart(10_000, '0'));
    expect(() => new TickFile(big).open()).toThrow(/bytes, not a tick/);
  });

  it('recreates the file when it is removed while serving', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    const tf = new TickFile(file);
    tf.open();
    await tf.write(5n);
    fs.rmSync(file);
    await tf.write(6n);
    expect(fs.readFileSync(file, 'utf8')).toBe('6\n');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('replaces a file that was swapped for longer content instead of leaving a torn tail', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    const tf = new TickFile(file);
    tf.open();
    await tf.write(7n);
    fs.writeFileSync(file, '123456789\n');
    await tf.write(8n);
    expect(fs.readFileSync(file, 'utf8')).toBe('8\n');
  });

  it('reports a FIFO or a directory put in the place of the file, without hanging and without replacing it', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'tick.dat');
    const tf = new TickFile(file);
    tf.open();
    await tf.write(3n);
    fs.rmSync(file);
    execFileSync('mkfifo', [file]);
    await expect(tf.write(4n)).rejects.toBeInstanceOf(TickFileWriteError);
    expect(fs.lstatSync(file).isFIFO()).toBe(true);
    fs.rmSync(file);
    fs.mkdirSync(file);
    await expect(tf.write(4n)).rejects.toThrow(/EISDIR/);
    fs.rmdirSync(file);
    await tf.write(4n);
    expect(fs.readFileSync(file, 'utf8')).toBe('4\n');
  });

  it('reports a tick file it may not open instead of replacing it behind the operator', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'tick.dat');
    const tf = new TickFile(file);
    tf.open();
    await tf.write(3n);
    const elsewhere = path.join(dir, 'elsewhere');
    fs.writeFileSync(elsewhere, 'keep\n');
    fs.rmSync(file);
    fs.symlinkSync(elsewhere, file);
    await expect(tf.write(4n)).rejects.toThrow(/ELOOP/);
    await expect(tf.write(4n)).rejects.toBeInstanceOf(TickFileWriteError);
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(elsewhere, 'utf8')).toBe('keep\n');
    fs.rmSync(file);
    await tf.write(4n);
    expect(fs.readFileSync(file, 'utf8')).toBe('4\n');
  });

  it('fails with TickFileWriteError when the directory is gone, and recovers when it is back', async () => {
    const dir = path.join(tempDir(), 'state');
    const file = path.join(dir, 'tick.dat');
    const tf = new TickFile(file);
    tf.open();
    await tf.write(1n);
    fs.rmSync(dir, { recursive: true });
    await expect(tf.write(2n)).rejects.toBeInstanceOf(TickFileWriteError);
    await expect(tf.write(2n)).rejects.toThrow(/ENOENT/);
    fs.mkdirSync(dir, { mode: 0o700 });
    await tf.write(2n);
    expect(fs.readFileSync(file, 'utf8')).toBe('2\n');
    expect(fs.readdirSync(dir)).toEqual(['tick.dat']);
  });
});
