// The ordering clock: hands out strictly increasing ticks, each one durable before it is
// acknowledged. Calls that arrive while a flush is under way wait for the next one, so any
// number of calls in flight share one write + fdatasync (group commit).
//
// Ticks are numbered when their batch is flushed, not when they are asked for: a batch whose
// flush fails is rejected as a whole, its numbers were never acknowledged, and the next batch
// numbers from the last durable tick again. The file therefore always holds exactly the last
// acknowledged tick (or, after a failed flush that still reached the disk, a larger one).

import { MAX_TICK } from './tick-file.js';

/** Where durable ticks go. TickFile implements it; tests may inject faults. */
export interface TickStore {
  /** Makes `value` durable. */
  write(value: bigint): Promise<void>;
}

export class OverflowError extends Error {
  override readonly name = 'OverflowError';
  constructor() {
    super('the tick is at 2^64-1 and cannot advance');
  }
}

export class PersistError extends Error {
  override readonly name = 'PersistError';
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}

/** Called for each tick of a durable batch, in tick order, before its caller is answered. */
export type TickResolver<T> = (tick: bigint) => T;

interface Waiter {
  resolve(tick: bigint): void;
  reject(err: Error): void;
}

export class Clock {
  private durable: bigint;
  private queue: Waiter[] = [];
  private flushing = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly store: TickStore,
    initial: bigint,
  ) {
    if (initial < 0n || initial > MAX_TICK) throw new RangeError('initial tick out of range');
    this.durable = initial;
  }

  /** The last tick acknowledged (durable). */
  get tick(): bigint {
    return this.durable;
  }

  /** Number of calls waiting for or inside a flush (plus one while a flush is under way or due). */
  get pending(): number {
    return this.queue.length + (this.flushing ? 1 : 0);
  }

  /**
   * Advances the clock by one. Resolves with the new tick once it is durable; rejects with
   * OverflowError (nothing changes) or PersistError (the tick was not made durable).
   */
  next(): Promise<bigint> {
    return new Promise<bigint>((resolve, reject) => {
      this.enqueue({ resolve, reject });
    });
  }

  /**
   * Callback form of next(), for the hot path: no promise per call. `done` is called exactly
   * once, with either an error or the durable tick.
   */
  nextCallback(done: (err: Error | null, tick: bigint) => void): void {
    this.enqueue({ resolve: (t) => done(null, t), reject: (e) => done(e, 0n) });
  }

  private enqueue(w: Waiter): void {
    if (this.queue.length === 0 && !this.flushing && this.durable >= MAX_TICK) {
      w.reject(new OverflowError());
      return;
    }
    this.queue.push(w);
    if (!this.flushing) this.scheduleFlush();
  }

  /** Resolves when no call is waiting or being flushed. */
  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    const room = MAX_TICK - this.durable;
    const served = BigInt(batch.length) <= room ? batch.length : Number(room);
    for (let i = served; i < batch.length; i++) (batch[i] as Waiter).reject(new OverflowError());
    if (served === 0) {
      this.afterFlush();
      return;
    }
    const base = this.durable;
    const target = base + BigInt(served);
    this.flushing = true;
    let p: Promise<void>;
    try {
      p = this.store.write(target);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      () => {
        this.durable = target;
        this.flushing = false;
        for (let i = 0; i < served; i++) (batch[i] as Waiter).resolve(base + BigInt(i + 1));
        this.afterFlush();
      },
      (err: unknown) => {
        this.flushing = false;
        const e = new PersistError(err instanceof Error ? err : new Error(String(err)));
        for (let i = 0; i < served; i++) (batch[i] as Waiter).reject(e);
        this.afterFlush();
      },
    );
  }

  /**
   * Cuts the batch at the end of this turn of the event loop, not at the first call: every
   * call that the socket reads in this turn joins the batch, and after a flush the replies of
   * the batch just made durable leave first. (Flushing at the first call split a steady set
   * of callers into a lone call and the rest, taking turns: BENCHMARKS.md.)
   */
  private scheduleFlush(): void {
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      if (this.queue.length > 0) this.flush();
      else this.afterFlush();
    });
  }

  private afterFlush(): void {
    if (this.queue.length > 0) {
      this.scheduleFlush();
      return;
    }
    const idle = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of idle) f();
  }
}
