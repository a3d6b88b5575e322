import { describe, expect, it } from 'vitest';
import { Clock, OverflowError, PersistError, type TickStore } from '../../src/engine/clock.js';
import { MAX_TICK } from '../../src/engine/tick-file.js';

/** A store that records what it was asked to write and can be told to fail. */
class RecordingStore implements TickStore {
  writes: bigint[] = [];
  failNext = 0;
  async write(value: bigint): Promise<void> {
    await new Promise((r) => setImmediate(r));
    if (this.failNext > 0) {
      this.failNext--;
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    }
    this.writes.push(value);
  }
}

describe('Clock', () => {
  it('hands out contiguous unique ticks and shares flushes between calls in flight', async () => {
    const store = new RecordingStore();
    const clock = new Clock(store, 10n);
    const ticks = await Promise.all(Array.from({ length: 500 }, () => clock.next()));
    expect(ticks).toEqual(Array.from({ length: 500 }, (_, i) => 11n + BigInt(i)));
    expect(clock.tick).toBe(510n);
    expect(store.writes.at(-1)).toBe(510n);
    // Group commit: far fewer flushes than calls, and every flush moved the file forward.
    expect(store.writes.length).toBeLessThan(10);
    for (let i = 1; i < store.writes.length; i++) expect(store.writes[i]! > store.writes[i - 1]!).toBe(true);
  });

  it('answers a tick only after the store made it durable', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const store: TickStore = { write: () => gate };
    const clock = new Clock(store, 0n);
    let got: bigint | undefined;
    const p = clock.next().then((t) => (got = t));
    await new Promise((r) => setImmediate(r));
    expect(got).toBeUndefined();
    expect(clock.tick).toBe(0n);
    release();
    await p;
    expect(got).toBe(1n);
  });

  it('rejects a failed batch with PersistError and never acknowledges its ticks', async () => {
    const store = new RecordingStore();
    const clock = new Clock(store, 5n);
    await clock.next();
    store.failNext = 1;
    const failed = await Promise.allSettled([clock.next(), clock.next(), clock.next()]);
    const rejected = failed.filter((r) => r.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PersistError);
    const acked = failed.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<bigint>).value);
    const after = await Promise.all([clock.next(), clock.next()]);
    const all = [6n, ...acked, ...after];
    expect(new Set(all.map(String)).size).toBe(all.length);
    // The durable value is exactly the last acknowledged tick.
    expect(clock.tick).toBe(after[1]);
    expect(store.writes.at(-1)).toBe(after[1]);
  });

  it('answers Overflow at 2^64-1 and changes nothing', async () => {
    const store = new RecordingStore();
    const clock = new Clock(store, MAX_TICK);
    await expect(clock.next()).rejects.toBeInstanceOf(OverflowError);
    expect(clock.tick).toBe(MAX_TICK);
    expect(store.writes).toEqual([]);
  });

  it('serves the ticks left below 2^64-1 and refuses the rest of a batch', async () => {
    const store = new RecordingStore();
    const clock = new Clock(store, MAX_TICK - 2n);
    const r = await Promise.allSettled(Array.from({ length: 5 }, () => clock.next()));
    const ok = r.filter((x) => x.status === 'fulfilled').map((x) => (x as PromiseFulfilledResult<bigint>).value);
    expect(ok).toEqual([MAX_TICK - 1n, MAX_TICK]);
    expect(r.filter((x) => x.status === 'rejected').every((x) => (x as PromiseRejectedResult).reason instanceof OverflowError)).toBe(true);
    expect(clock.tick).toBe(MAX_TICK);
    expect(store.writes.at(-1)).toBe(MAX_TICK);
  });

  it('cuts a batch at the end of the turn: calls of one turn share a flush, later ones wait for the next', async () => {
    const events: string[] = [];
    const store: TickStore = {
      write: async (value) => {
        events.push(`write ${value}`);
        await new Promise((r) => setImmediate(r));
      },
    };
    const clock = new Clock(store, 0n);
    const first = Array.from({ length: 3 }, () => clock.next().then((t) => events.push(`answer ${t}`)));
    // Still in the same turn: these join the same batch.
    first.push(clock.next().then((t) => events.push(`answer ${t}`)));
    // Next turn, while the first batch is being written: these wait for the next flush.
    await new Promise((r) => setImmediate(r));
    const second = Array.from({ length: 2 }, () => clock.next().then((t) => events.push(`answer ${t}`)));
    await Promise.all([...first, ...second]);
    expect(events).toEqual([
      'write 4',
      'answer 1',
      'answer 2',
      'answer 3',
      'answer 4',
      'write 6',
      'answer 5',
      'answer 6',
    ]);
  });

  it('whenIdle waits for the flush in flight', async () => {
    const store = new RecordingStore();
    const clock = new Clock(store, 0n);
    const p = Promise.all([clock.next(), clock.next()]);
    await clock.whenIdle();
    expect(clock.pending).toBe(0);
    expect(clock.tick).toBe(2n);
    await p;
  });
});
