// A slow disk: strace makes every fdatasync of the running daemon take DELAY_MS longer (a real
// delay in the real system call, injected from outside; nothing in the daemon is told). The
// daemon flushes on its main thread while flushes are fast; the first slow flush must move the
// next ones to the thread pool, so that GetTick and Peer.Ping answer while a NextTick waits for
// the disk. Once the delay is gone NextTick is fast again, and across all of it every tick is
// unique and the file holds the last one acknowledged.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChronosClient } from '../../src/client/index.js';
import {
  IS_ROOT,
  PROFILE,
  ROOT_SKIP_REASON,
  SEED,
  counts,
  openTempDir,
  permissiveBusConfig,
  privateBundle,
  readTickStrict,
  sleep,
  spawnDaemon,
  startBusWith,
  tearDown,
  type Bus,
  type Daemon,
} from './helpers/env.js';
import { SectionRecorder } from './helpers/report.js';

const DELAY_MS = 300;
const ROUNDS = counts(5, 2);
const rec = new SectionRecorder('slow-disk', `fdatasync delayed by ${DELAY_MS} ms (strace fault injection), ${ROUNDS} round(s)`, PROFILE, SEED);

let dir: string;
let bus: Bus | undefined;
let daemon: Daemon | undefined;
let client: ChronosClient | undefined;
let tracer: ChildProcess | undefined;

beforeAll(async () => {
  dir = openTempDir();
  bus = await startBusWith(dir, (s) => permissiveBusConfig(s));
});
rec.recordFailures();
afterAll(async () => {
  tracer?.kill('SIGKILL');
  await tearDown({ daemon, clients: client ? [client] : [], bus, dir });
  if (!IS_ROOT) rec.notes.push(`skipped: ${ROOT_SKIP_REASON}`);
  rec.finish();
});

/** Whether every thread of `pid` is traced, or none is (strace -f attaches and detaches them one by one). */
function everyThread(pid: number, traced: boolean): boolean {
  const tasks = fs.readdirSync(`/proc/${pid}/task`);
  return tasks.every((t) => (traced ? /^TracerPid:\s*[1-9]/m : /^TracerPid:\s*0$/m).test(fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8')));
}

/** Attaches strace to every thread of `pid`, delaying each fdatasync by DELAY_MS. */
async function slowDown(pid: number): Promise<ChildProcess> {
  const p = spawn('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=fdatasync', '-e', `inject=fdatasync:delay_enter=${DELAY_MS * 1000}`, '-p', String(pid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 1000 && !everyThread(pid, true); i++) {
    if (p.exitCode !== null) throw new Error(`strace exited: ${err}`);
    await sleep(5);
  }
  if (!everyThread(pid, true)) throw new Error(`strace did not attach to every thread: ${err}`);
  return p;
}

/** Detaches strace (SIGTERM makes it let go of the threads) and waits until it has. */
async function speedUp(p: ChildProcess, pid: number): Promise<void> {
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await exited;
  for (let i = 0; i < 1000 && !everyThread(pid, false); i++) await sleep(5);
}

const settled = <T>(p: Promise<T>) => {
  const s = { done: false };
  void p.then(
    () => (s.done = true),
    () => (s.done = true),
  );
  return s;
};

describe.skipIf(!IS_ROOT)(`slow disk (root: ptrace)${IS_ROOT ? '' : ` — skipped: ${ROOT_SKIP_REASON}`}`, () => {
  it('after one slow flush, GetTick and Ping answer while NextTick waits for the disk; ticks stay unique', async () => {
    const file = path.join(dir, 'state', 'tick.dat');
    daemon = spawnDaemon({ bundle: privateBundle(dir), address: bus!.address, tickFile: file });
    expect(await daemon.serving, daemon.stderr()).toBe(true);
    client = await ChronosClient.connect({ address: bus!.address, timeoutMs: 30_000 });
    const acked: bigint[] = [];
    let answeredDuringSlowFlush = 0;
    let calls = 0;

    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < 5; i++, calls++) acked.push(await client.nextTick());

      tracer = await slowDown(daemon.pid);
      rec.add('faults', 1);
      // The first slow flush runs where flushes ran while the disk was fast (the main thread).
      acked.push(await client.nextTick());
      calls++;
      const durable = acked.at(-1)!;

      // Now the flushes are in the pool: the daemon answers other calls meanwhile.
      const slowCall = client.nextTick();
      calls++;
      const slow = settled(slowCall);
      for (let i = 0; i < 3; i++, calls += 2) {
        expect(await client.getTick()).toBe(durable);
        await client.peerPing();
        expect(slow.done, 'NextTick answered before the calls sent after it: its flush blocked the daemon').toBe(false);
        answeredDuringSlowFlush += 2;
      }
      acked.push(await slowCall);

      await speedUp(tracer, daemon.pid);
      tracer = undefined;
      for (let i = 0; i < 20; i++, calls++) acked.push(await client.nextTick());
      expect(await client.getTick()).toBe(acked.at(-1));
      calls++;
    }

    expect(daemon.alive()).toBe(true);
    for (let i = 1; i < acked.length; i++) expect(acked[i]! > acked[i - 1]!).toBe(true);
    expect(new Set(acked.map(String)).size).toBe(acked.length);
    expect(readTickStrict(file)).toBe(acked.at(-1));
    rec.add('calls', calls);
    rec.add('acked', acked.length);
    rec.add('repeated', acked.length - new Set(acked.map(String)).size);
    // Asserted above: the file holds the largest acknowledged tick, and the daemon is up.
    rec.add('lost', 0);
    rec.add('crashes', 0);
    rec.figures['fdatasync delay (ms)'] = DELAY_MS;
    rec.figures['calls answered while a NextTick waited for a slow flush'] = answeredDuringSlowFlush;
  });
});
