// Signals: SIGTERM (and SIGINT) at random moments while 8 clients call the daemon. Every call
// the daemon received is answered (no NoReply, no timeout): the ones that reached it get their
// tick, later ones find the name released. The file then holds exactly the largest tick
// acknowledged, the stop line says so, and the exit code is 0. Repeated over restarts on one
// tick file, so each start continues where the last stop left off.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChronosClient } from '../../src/client/index.js';
import {
  PROFILE,
  SEED,
  counts,
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
const rec = new SectionRecorder('signals', `SIGTERM / SIGINT under load from ${CLIENTS} clients, ${CYCLES} times`, PROFILE, SEED);

let dir: string;
let bus: Bus | undefined;
let daemon: Daemon | undefined;
let clients: ChronosClient[] = [];

beforeAll(async () => {
  dir = openTempDir();
  bus = await startBusWith(dir, (s) => permissiveBusConfig(s));
});
rec.recordFailures();
afterAll(async () => {
  await tearDown({ daemon, clients, bus, dir });
  rec.finish();
});

// After the name is released the bus answers for the daemon: nobody owns it.
const GONE = new Set(['org.freedesktop.DBus.Error.ServiceUnknown', 'org.freedesktop.DBus.Error.NameHasNoOwner']);

describe('signals', () => {
  it(`SIGTERM/SIGINT under load ${CYCLES} times: calls in flight answered, tick durable, exit 0`, async () => {
    const rand = prng(SEED);
    const bundle = privateBundle(dir);
    const file = path.join(dir, 'state', 'tick.dat');
    clients = await Promise.all(Array.from({ length: CLIENTS }, () => ChronosClient.connect({ address: bus!.address, timeoutMs: 10_000 })));
    const seen = new Set<bigint>();
    let repeated = 0;
    let acked = 0;
    let roundMax = 0n;
    let roundStart = 0n;
    let notContinuing = 0;
    const failures: Record<string, number> = {};
    const exitCodes: Record<string, number> = {};
    const stopMs: number[] = [];
    const mismatches: string[] = [];
    const load = new Load(clients, {
      inFlight: 4,
      rand,
      onOutcome: (o) => {
        if (o.error) return tally(failures, errorLabel(o.error));
        const t = o.tick as bigint;
        acked++;
        if (seen.has(t)) repeated++;
        if (t <= roundStart) notContinuing++;
        seen.add(t);
        if (t > roundMax) roundMax = t;
      },
    });
    load.pause();
    load.start();

    let lastFile: bigint | null = null;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      daemon = spawnDaemon({ bundle, address: bus!.address, tickFile: file });
      expect(await daemon.serving, daemon.stderr()).toBe(true);
      roundStart = daemon.startTick() as bigint;
      if (lastFile !== null && roundStart !== lastFile) notContinuing++;
      roundMax = roundStart;
      load.resume();
      await sleep(50 + Math.floor(rand() * 450));
      const sig: NodeJS.Signals = cycle % 4 === 3 ? 'SIGINT' : 'SIGTERM';
      const t0 = process.hrtime.bigint();
      daemon.proc.kill(sig);
      const code = await daemon.exited;
      stopMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      tally(exitCodes, `${sig}:${code}`);
      await load.drain();
      const onDisk = readTickStrict(file);
      // A clean stop leaves exactly the largest tick acknowledged: every durable tick was answered.
      if (onDisk !== roundMax) mismatches.push(`cycle ${cycle}: file ${onDisk}, largest acknowledged ${roundMax}`);
      if (!new RegExp(`stopped \\(${sig}\\); tick ${onDisk} durable`).test(daemon.stderr())) {
        mismatches.push(`cycle ${cycle}: stop line ${JSON.stringify(daemon.stderr().trim().split('\n').at(-1))}`);
      }
      lastFile = onDisk;
    }
    await load.stop();

    const unanswered = Object.entries(failures).filter(([k]) => !GONE.has(k));
    rec.add('faults', CYCLES);
    rec.add('restarts', CYCLES);
    rec.add('calls', load.calls);
    rec.add('acked', acked);
    rec.add('repeated', repeated);
    rec.add('lost', mismatches.filter((m) => /file/.test(m)).length);
    rec.add('crashes', Object.entries(exitCodes).filter(([k]) => !k.endsWith(':0')).reduce((a, [, n]) => a + n, 0));
    Object.assign(rec.figures, {
      'signals sent : exit code': exitCodes,
      'calls made / acknowledged': `${load.calls} / ${acked}`,
      'calls refused because the name was already released': Object.entries(failures).filter(([k]) => GONE.has(k)).reduce((a, [, n]) => a + n, 0),
      'calls left unanswered or failed otherwise': Object.fromEntries(unanswered),
      'signal to exit, ms: median / max': `${percentile(stopMs, 50).toFixed(1)} / ${Math.max(...stopMs).toFixed(1)}`,
      'largest tick': String(maxBig(seen)),
    });

    expect(Object.fromEntries(unanswered), 'calls not answered by the daemon nor refused by the bus').toEqual({});
    expect(mismatches).toEqual([]);
    expect(repeated).toBe(0);
    expect(notContinuing).toBe(0);
    expect(Object.keys(exitCodes).every((k) => k.endsWith(':0'))).toBe(true);
    expect(acked).toBeGreaterThan(CYCLES * 10);
  });
});
