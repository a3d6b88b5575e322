// UTC in nanoseconds that never goes backwards within one process.
//
// Node's wall clock (Date.now) has millisecond resolution; the monotonic clock
// (process.hrtime) has nanoseconds but no epoch. Each reading anchors the monotonic clock to
// the wall clock's current millisecond and keeps it there: the digits below the millisecond
// come from the monotonic clock (they order events correctly, they are not more accurate than
// the wall clock). When the wall clock steps back, readings hold at the last value handed out
// until the wall clock catches up, so stamps stay ordered.

export interface TimeSources {
  /** Wall clock, milliseconds since the epoch. */
  wallMs(): number;
  /** Monotonic clock, nanoseconds from an arbitrary origin. */
  monoNs(): bigint;
}

export const systemTime: TimeSources = {
  wallMs: () => Date.now(),
  monoNs: () => process.hrtime.bigint(),
};

const MS = 1_000_000n;

export class WallClock {
  private anchorWall = 0n;
  private anchorMono = 0n;
  private last = 0n;

  constructor(private readonly time: TimeSources = systemTime) {}

  /**
   * Anchors at a millisecond edge of the wall clock (waits for the next one, under 1 ms), so
   * the sub-millisecond digits start out right instead of at zero.
   */
  calibrate(): void {
    const start = this.time.wallMs();
    let wall = start;
    for (let spins = 0; wall === start && spins < 10_000_000; spins++) wall = this.time.wallMs();
    this.anchorWall = BigInt(wall) * MS;
    this.anchorMono = this.time.monoNs();
  }

  /** UTC nanoseconds since the epoch, non-decreasing across calls. */
  nowNs(): bigint {
    const wall = BigInt(this.time.wallMs()) * MS;
    const mono = this.time.monoNs();
    let est = this.anchorWall + (mono - this.anchorMono);
    // Outside the wall clock's current millisecond: the clock was stepped or slewed. Re-anchor.
    if (est < wall || est >= wall + MS) {
      this.anchorWall = wall;
      this.anchorMono = mono;
      est = wall;
    }
    if (est < this.last) est = this.last;
    this.last = est;
    return est;
  }
}
