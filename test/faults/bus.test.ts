// Bus faults: the dbus-daemon is killed (mostly SIGKILL, some SIGTERM) while 8 clients call
// the daemon. The daemon must exit with code 3 (bus lost) with every acknowledged tick
// durable, and a daemon started on a new bus must continue from the file. How long the
// daemon takes to notice and exit is measured and recorded, not asserted.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChronosClient } from '../../src/client/index.js';
import {
  PROFILE,
  SEED,
  counts,
  killDaemon,
  maxBig,
  openTempDir,
  percentile,
  permissiveBusConfig,
  privateBundle,
  prng,
  readTickStrict,
  sleep,
  spawnDaemon,
  startBusWith,
  tearDown,
  type Bus,
  type Daemon,
} from './helpers/env.js';
import { Load, errorLabel, tally } from './helpers/load.js';
import { SectionRecorder } from './helpers/report.js';

const CYCLES = counts(20, 5);
const CLIENTS = 8;
const rec = new SectionRecorder('bus', `dbus-daemon killed under load, ${CYCLES} times`, PROFILE, SEED);

let dir: string;
let bus: Bus | undefined;
let daemon: Daemon | undefined;
let clients: ChronosClient[] = [];

beforeAll(() => {
  dir = openTempDir();
});
rec.recordFailures();
afterAll(async () => {
  await tearDown({ daemon, clients, bus, dir });
  rec.finish();
});

/** Resolves with the exit code, or null if the process is still running after `ms` (a hang guard). */
async function exitWithin(d: Daemon, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([d.exited, new Promise<null>((res) => (timer = setTimeout(() => res(null), ms)))]);
  clearTimeout(timer);
  return r;
}

describe('bus faults', () => {
  it(`the bus killed under load ${CYCLES} times: exit 3 with the tick durable, a new daemon continues`, async () => {
    const rand = prng(SEED);
    const bundle = privateBundle(dir);
    const file = path.join(dir, 'state', 'tick.dat');
    const seen = new Set<bigint>();
    let repeated = 0;
    let acked = 0;
    let calls = 0;
    let lost = 0;
    let unexpected = 0;
    let notContinuing = 0;
    const latenciesMs: number[] = [];
    const exitCodes: Record<string, number> = {};
    const failures: Record<string, number> = {};
    const signals: Record<string, number> = {};
    let lastFile: bigint | null = null;

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      bus = await startBusWith(dir, (s) => permissiveBusConfig(s), `bus-${cycle}`);
      daemon = spawnDaemon({ bundle, address: bus.address, tickFile: file });
      expect(await daemon.serving, daemon.stderr()).toBe(true);
      const start = daemon.startTick() as bigint;
      if (lastFile !== null && start !== lastFile) notContinuing++;
      clients = await Promise.all(Array.from({ length: CLIENTS }, () => ChronosClient.connect({ address: bus!.address, timeoutMs: 10_000 })));
      const load = new Load(clients, {
        inFlight: 4,
        rand,
        onOutcome: (o) => {
          if (o.error) return tally(failures, errorLabel(o.error));
          const t = o.tick as bigint;
          acked++;
          if (seen.has(t)) repeated++;
          if (t <= start) notContinuing++;
          seen.add(t);
        },
      });
      load.start();
      await sleep(100 + Math.floor(rand() * 400));
      const sig: NodeJS.Signals = cycle % 5 === 4 ? 'SIGTERM' : 'SIGKILL';
      tally(signals, sig);
      const t0 = process.hrtime.bigint();
      bus.proc.kill(sig);
      load.pause();
      const code = await exitWithin(daemon, 20_000);
      latenciesMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      tally(exitCodes, String(code));
      if (code === null) {
        unexpected++;
        await killDaemon(daemon);
      }
      expect(daemon.stderr()).toMatch(/stopped \(the bus connection was lost\); tick \d+ durable/);
      await load.stop();
      calls += load.calls;
      await Promise.all(clients.map((c) => c.close()));
      clients = [];
      await bus.exited;

      const onDisk = readTickStrict(file);
      const m = /stopped \(the bus connection was lost\); tick (\d+) durable/.exec(daemon.stderr());
      // The tick the daemon reported durable on its way out is what the file holds.
      if (m && BigInt(m[1] as string) !== onDisk) notContinuing++;
      for (const t of seen) if (t > onDisk) lost++;
      lastFile = onDisk;
    }

    // A daemon on a fresh bus continues after the last crash.
    bus = await startBusWith(dir, (s) => permissiveBusConfig(s), 'bus-final');
    daemon = spawnDaemon({ bundle, address: bus.address, tickFile: file });
    expect(await daemon.serving, daemon.stderr()).toBe(true);
    const c = await ChronosClient.connect({ address: bus.address });
    const next = await c.nextTick();
    await c.close();
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);

    rec.add('faults', CYCLES);
    rec.add('restarts', CYCLES);
    rec.add('calls', calls + 1);
    rec.add('acked', acked + 1);
    rec.add('repeated', repeated + (seen.has(next) ? 1 : 0));
    rec.add('lost', lost);
    rec.add('crashes', unexpected);
    Object.assign(rec.figures, {
      'bus kills by signal': signals,
      'daemon exit codes': exitCodes,
      'exit latency after the bus died, ms: median / p90 / max': `${percentile(latenciesMs, 50).toFixed(1)} / ${percentile(latenciesMs, 90).toFixed(1)} / ${Math.max(...latenciesMs).toFixed(1)}`,
      'exit latencies, ms (each cycle)': latenciesMs.map((x) => Math.round(x * 10) / 10).join(', '),
      'calls made / acknowledged': `${calls} / ${acked}`,
      'failed calls by error (bus gone)': failures,
      'acknowledged ticks missing from the file (lost)': lost,
      'restarts or answers that did not continue from the file': notContinuing,
      'first tick on a fresh bus after the last kill / largest acknowledged before': `${next} / ${maxBig(seen)}`,
    });
    rec.notes.push(
      'Exit latency is measured from the kill of dbus-daemon to the exit of the Chronos daemon as seen by the test process; it includes finishing the flush under way and the stop line.',
    );

    expect(exitCodes).toEqual({ '3': CYCLES });
    expect(repeated).toBe(0);
    expect(lost).toBe(0);
    expect(notContinuing).toBe(0);
    expect(next).toBe((lastFile as bigint) + 1n);
    expect(next > maxBig(seen)).toBe(true);
    expect(acked).toBeGreaterThan(CYCLES * 10);
  });
});
