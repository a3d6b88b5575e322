// The tick file's promises: contiguous unique ticks under concurrency, restart and carry-over,
// refusal of corrupt files, kill -9 while serving, and real write failures.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChronosClient, ChronosError } from '../../src/client/index.js';
import { ERRORS } from '../../src/dbus/interface.js';
import { readTick, startBus, startDaemon, stopDaemon, tempDir, type TestBus } from '../helpers/bus.js';

let bus: TestBus;

beforeAll(async () => {
  bus = await startBus();
});
afterAll(async () => {
  await bus?.stop();
});

const isRoot = process.getuid?.() === 0;

describe('concurrency', () => {
  it('8 clients with 2,000 NextTick each get 16,000 distinct, contiguous ticks', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    const d = await startDaemon(bus.address, file);
    const clients = await Promise.all(Array.from({ length: 8 }, () => ChronosClient.connect({ address: bus.address })));
    try {
      const per = await Promise.all(
        clients.map(async (c) => {
          const got: bigint[] = [];
          // 20 in flight per client, 2,000 in all.
          for (let i = 0; i < 100; i++) got.push(...(await Promise.all(Array.from({ length: 20 }, () => c.nextTick()))));
          return got;
        }),
      );
      const all = per.flat().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect(all.length).toBe(16_000);
      expect(new Set(all.map(String)).size).toBe(16_000);
      expect(all[0]).toBe(1n);
      expect(all.at(-1)).toBe(16_000n);
      // Each client saw its own ticks strictly increasing.
      for (const got of per) for (let i = 1; i < got.length; i++) expect(got[i]! > got[i - 1]!).toBe(true);
      expect(readTick(file)).toBe(16_000n);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      expect(await stopDaemon(d)).toBe(0);
    }
  });
});

describe('restart and carry-over', () => {
  it('a restart keeps the tick', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    let d = await startDaemon(bus.address, file);
    let c = await ChronosClient.connect({ address: bus.address });
    for (let i = 0; i < 5; i++) await c.nextTick();
    await c.close();
    expect(await stopDaemon(d)).toBe(0);
    expect(d.stderr()).toMatch(/stopped \(SIGTERM\); tick 5 durable/);
    d = await startDaemon(bus.address, file);
    expect(d.stderr()).toMatch(/tick 5\n/);
    c = await ChronosClient.connect({ address: bus.address });
    expect(await c.getTick()).toBe(5n);
    expect(await c.nextTick()).toBe(6n);
    await c.close();
    await stopDaemon(d);
  });

  it("a file in the reference daemon's format carries over: 41 gives GetTick 41 and NextTick 42", async () => {
    const file = path.join(tempDir(), 'tick.dat');
    fs.writeFileSync(file, '41\n');
    const d = await startDaemon(bus.address, file);
    const c = await ChronosClient.connect({ address: bus.address });
    expect(await c.getTick()).toBe(41n);
    expect(await c.nextTick()).toBe(42n);
    expect(fs.readFileSync(file, 'utf8')).toBe('42\n');
    await c.close();
    await stopDaemon(d);
  });

  it.each([
    ['garbage', 'hello\n', /not a decimal number/],
    ['empty', '', /file is empty/],
    ['negative', '-5\n', /negative/],
    ['over 2^64-1', '18446744073709551616\n', /exceeds 2\^64-1/],
  ])('a %s file refuses to start with exit 1, names the file, and stays untouched', async (_what, content, why) => {
    const file = path.join(tempDir(), 'tick.dat');
    fs.writeFileSync(file, content);
    fs.utimesSync(file, 1234, 1234);
    const d = await startDaemon(bus.address, file);
    expect(await d.exited).toBe(1);
    const err = d.stderr().trim();
    expect(err.split('\n')).toHaveLength(1);
    expect(err).toContain(file);
    expect(err).toMatch(why);
    expect(fs.readFileSync(file, 'utf8')).toBe(content);
    expect(fs.statSync(file).mtimeMs).toBe(1234_000);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['tick.dat']);
  });

  it('at 2^64-1 NextTick answers Overflow and changes nothing', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    fs.writeFileSync(file, '18446744073709551614\n');
    const d = await startDaemon(bus.address, file);
    const c = await ChronosClient.connect({ address: bus.address });
    expect(await c.nextTick()).toBe(18446744073709551615n);
    for (const call of [() => c.nextTick(), () => c.getPhiTimestamp('A'), () => c.logEvent('A', 'a', 'b')]) {
      const err = (await call().catch((e: unknown) => e)) as ChronosError;
      expect(err.dbusName).toBe(ERRORS.Overflow);
      expect(err.code).toBe('Overflow');
    }
    expect(await c.getTick()).toBe(18446744073709551615n);
    expect(fs.readFileSync(file, 'utf8')).toBe('18446744073709551615\n');
    await c.close();
    await stopDaemon(d);
  });

  it('one daemon per tick file, even on different buses', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    const other = await startBus();
    const a = await startDaemon(bus.address, file);
    const b = await startDaemon(other.address, file);
    expect(await b.exited).toBe(1);
    expect(b.stderr()).toMatch(/in use by another chronosd-dbus/);
    expect(a.proc.exitCode).toBeNull();
    await stopDaemon(a);
    await other.stop();
  });
});

describe('kill -9 while serving', () => {
  it('20 crashes under load: no acknowledged tick is handed out again, the file always parses', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    const acked = new Set<string>();
    let maxAcked = 0n;
    for (let round = 0; round < 20; round++) {
      const d = await startDaemon(bus.address, file);
      const restartTick = BigInt(/tick (\d+)\n/.exec(d.stderr())![1]!);
      // Everything acknowledged before the crash is at or below what the restart read.
      expect(restartTick >= maxAcked).toBe(true);
      expect(readTick(file)).toBe(restartTick);
      const clients = await Promise.all(Array.from({ length: 4 }, () => ChronosClient.connect({ address: bus.address, timeoutMs: 5000 })));
      let stop = false;
      const loops = clients.map(async (c) => {
        while (!stop) {
          const batch = await Promise.allSettled(Array.from({ length: 8 }, () => c.nextTick()));
          for (const r of batch) {
            if (r.status === 'fulfilled') {
              const k = String(r.value);
              expect(acked.has(k), `tick ${k} handed out twice`).toBe(false);
              acked.add(k);
              if (r.value > maxAcked) maxAcked = r.value;
            }
          }
          if (batch.some((r) => r.status === 'rejected')) return;
        }
      });
      // Let some load build up, a varying amount each round.
      const target = acked.size + 50 + round * 37;
      while (acked.size < target) await new Promise((r) => setTimeout(r, 2));
      d.proc.kill('SIGKILL');
      expect(await d.exited).toBe(137);
      stop = true;
      await Promise.all(loops);
      await Promise.all(clients.map((c) => c.close()));
      expect(() => readTick(file)).not.toThrow();
      expect(readTick(file) >= maxAcked).toBe(true);
    }
    expect(acked.size).toBeGreaterThan(1000);
  });
});

describe.skipIf(!isRoot)('write failures (root: real mounts)', () => {
  let mnt: string;
  beforeAll(() => {
    mnt = tempDir('chronos-mnt-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mnt]);
  });
  afterAll(() => {
    try {
      execFileSync('umount', ['-l', mnt]);
    } catch {
      // already gone
    }
  });

  /** Runs `fn` against a fresh daemon and client, and always stops both. */
  async function withDaemon(file: string, fn: (c: ChronosClient) => Promise<void>) {
    const d = await startDaemon(bus.address, file);
    const c = await ChronosClient.connect({ address: bus.address });
    try {
      await fn(c);
    } finally {
      await c.close();
      expect(await stopDaemon(d)).toBe(0);
    }
  }

  async function expectPersist(c: ChronosClient) {
    const err = (await c.nextTick().catch((e: unknown) => e)) as ChronosError;
    expect(err).toBeInstanceOf(ChronosError);
    expect(err.dbusName).toBe(ERRORS.Persist);
    expect(err.message.split('\n')).toHaveLength(1);
  }

  it('a read-only remount gives Error.Persist; the daemon keeps serving once writable; nothing repeats', async () => {
    const file = path.join(mnt, 'ro', 'tick.dat');
    await withDaemon(file, async (c) => {
      const seen: bigint[] = [await c.nextTick(), await c.nextTick()];
      // Remounting succeeds only while no write is open: the daemon opens the file per flush.
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      await expectPersist(c);
      await expectPersist(c);
      expect(await c.getTick()).toBe(seen[1]);
      execFileSync('mount', ['-o', 'remount,rw', mnt]);
      seen.push(await c.nextTick(), await c.nextTick());
      expect(new Set(seen.map(String)).size).toBe(seen.length);
      expect(seen[2]).toBe(seen[1]! + 1n);
      expect(readTick(file)).toBe(seen[3]);
    });
  });

  it('a full disk: in-place writes need no space; re-creating the file does, and fails with Persist until space is freed', async () => {
    const dir = path.join(mnt, 'full');
    const file = path.join(dir, 'tick.dat');
    await withDaemon(file, async (c) => {
      const first = await c.nextTick();
      const filler = path.join(mnt, 'filler');
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k', 'count=1000'], { stdio: 'ignore' });
      } catch {
        // dd stops at ENOSPC: the disk is full now
      }
      // Steady state keeps working on a full disk: the overwrite allocates nothing.
      expect(await c.nextTick()).toBe(first + 1n);
      // The file vanishes (an operator's mistake), and the space it held is taken too:
      // re-creating the file needs a block, so ENOSPC.
      fs.rmSync(file);
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}2`, 'bs=4k', 'count=1000'], { stdio: 'ignore' });
      } catch {
        // full again
      }
      const err = (await c.nextTick().catch((e: unknown) => e)) as ChronosError;
      expect(err.dbusName).toBe(ERRORS.Persist);
      expect(err.message).toMatch(/ENOSPC/);
      fs.rmSync(filler);
      fs.rmSync(`${filler}2`);
      expect(await c.nextTick()).toBe(first + 2n);
      expect(readTick(file)).toBe(first + 2n);
    });
  });

  it('the state directory removed while serving: Persist until it is back, then the file is re-created', async () => {
    const dir = path.join(mnt, 'gone');
    const file = path.join(dir, 'tick.dat');
    await withDaemon(file, async (c) => {
      const t = await c.nextTick();
      fs.rmSync(dir, { recursive: true });
      await expectPersist(c);
      fs.mkdirSync(dir, { mode: 0o700 });
      expect(await c.nextTick()).toBe(t + 1n);
      expect(readTick(file)).toBe(t + 1n);
    });
  });
});
