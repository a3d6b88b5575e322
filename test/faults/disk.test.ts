// Disk faults while serving, on a small tmpfs we mount, with the daemon running as an
// unprivileged user (nobody) so that permissions bite: read-only remount, the state
// directory removed, the file and directory made unwritable, a full disk. Every call sent
// while a fault that stops writes is in place must get Error.Persist (with the errno of the
// fault), the daemon must stay up and serve again once the fault is gone, and no
// acknowledged tick may repeat. Faults that do not stop writes (a full disk with the file in
// place, only the file or only the directory read-only) are measured and recorded as such.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChronosClient } from '../../src/client/index.js';
import { ERRORS } from '../../src/dbus/interface.js';
import {
  IS_ROOT,
  PROFILE,
  ROOT_SKIP_REASON,
  SEED,
  counts,
  maxBig,
  openTempDir,
  permissiveBusConfig,
  privateBundle,
  prng,
  readTickStrict,
  sh,
  sleep,
  spawnDaemon,
  startBusWith,
  tearDown,
  type Bus,
  type Daemon,
} from './helpers/env.js';
import { Load, errorLabel, tally, type Outcome } from './helpers/load.js';
import { SectionRecorder } from './helpers/report.js';

const CYCLES = counts(5, 2);
const NOBODY = 65534;
const rec = new SectionRecorder('disk', `disk faults while serving (daemon as uid ${NOBODY}), ${CYCLES} cycle(s) each`, PROFILE, SEED);

let dir: string;
let mnt: string;
let mounted = false;
let bus: Bus | undefined;
let daemon: Daemon | undefined;
let clients: ChronosClient[] = [];

rec.recordFailures();
afterAll(async () => {
  await tearDown({ daemon, clients, bus });
  if (mounted) {
    sh('mount', ['-o', 'remount,rw', mnt]);
    sh('umount', [mnt]).code === 0 || sh('umount', ['-l', mnt]);
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  if (!IS_ROOT) rec.notes.push(`skipped: ${ROOT_SKIP_REASON}`);
  rec.finish();
});

interface Fault {
  name: string;
  inject(): void;
  remove(): void;
  /** Whether every call sent during the fault must fail with Persist (else: must succeed). */
  stopsWrites: boolean;
  /** The errno the Persist message must name. */
  errno?: string;
  /** Inject with no call in flight (faults that race with the daemon's own recovery). */
  quiesce?: boolean;
}

/** Retries a remount that finds a file open for writing (the daemon opens one per flush). */
function remount(mode: 'ro' | 'rw'): number {
  for (let i = 0; ; i++) {
    const r = sh('mount', ['-o', `remount,${mode}`, mnt]);
    if (r.code === 0) return i;
    if (i > 500) throw new Error(`remount,${mode} keeps failing: ${r.stderr}`);
  }
}

function fill(name: string): void {
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${path.join(mnt, name)}`, 'bs=4k', 'count=100000'], { stdio: 'ignore' });
  } catch {
    // dd stops with ENOSPC: the disk is full
  }
  const df = sh('df', ['--output=avail', '-B1', mnt]).stdout.trim().split('\n')[1]?.trim();
  if (df !== '0') throw new Error(`${mnt} is not full: ${df} bytes available`);
}

describe.skipIf(!IS_ROOT)(`disk faults (root: real mounts)${IS_ROOT ? '' : ` — skipped: ${ROOT_SKIP_REASON}`}`, () => {
  beforeAll(async () => {
    dir = openTempDir();
    mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0755', 'tmpfs', mnt]);
    mounted = true;
    bus = await startBusWith(dir, (s) => permissiveBusConfig(s));
  });

  it('every fault that stops writes gives Error.Persist, the daemon stays up and serves after it; nothing repeats', async () => {
    const rand = prng(SEED);
    const bundle = privateBundle(dir);
    const state = path.join(mnt, 'state');
    const file = path.join(state, 'tick.dat');
    const mkState = () => {
      fs.mkdirSync(state, { mode: 0o700 });
      fs.chownSync(state, NOBODY, NOBODY);
    };
    mkState();

    daemon = spawnDaemon({ bundle, address: bus!.address, tickFile: file, uid: NOBODY, gid: NOBODY });
    expect(await daemon.serving, daemon.stderr()).toBe(true);
    expect(fs.statSync(file).uid).toBe(NOBODY);

    const seen = new Set<bigint>();
    let repeated = 0;
    let acked = 0;
    const byEpoch = new Map<number, Outcome[]>();
    clients = await Promise.all(Array.from({ length: 4 }, () => ChronosClient.connect({ address: bus!.address, timeoutMs: 10_000 })));
    const load = new Load(clients, {
      inFlight: 4,
      rand,
      onOutcome: (o) => {
        const list = byEpoch.get(o.epoch) ?? [];
        list.push(o);
        byEpoch.set(o.epoch, list);
        if (o.tick === undefined) return;
        acked++;
        if (seen.has(o.tick)) repeated++;
        seen.add(o.tick);
      },
    });
    load.start();

    const waitFor = async (epoch: number, n: number, what: (o: Outcome) => boolean) => {
      for (let i = 0; i < 2000 && (byEpoch.get(epoch) ?? []).filter(what).length < n; i++) await sleep(5);
    };
    let epoch = 0;
    const nextEpoch = () => {
      epoch++;
      load.epoch = epoch;
      return epoch;
    };

    let remountRetries = 0;
    const faults: Fault[] = [
      {
        name: 'read-only remount',
        inject: () => void (remountRetries += remount('ro')),
        remove: () => void (remountRetries += remount('rw')),
        stopsWrites: true,
        errno: 'EROFS',
      },
      {
        name: 'state directory removed',
        inject: () => fs.rmSync(state, { recursive: true }),
        remove: mkState,
        stopsWrites: true,
        errno: 'ENOENT',
      },
      {
        name: 'file 0400 and directory 0500 (unwritable)',
        inject: () => {
          fs.chmodSync(file, 0o400);
          fs.chmodSync(state, 0o500);
        },
        remove: () => {
          fs.chmodSync(state, 0o700);
          fs.chmodSync(file, 0o600);
        },
        stopsWrites: true,
        errno: 'EACCES',
      },
      {
        name: 'disk full, file removed (re-creating it needs a block)',
        inject: () => {
          fs.rmSync(file);
          fill('filler');
        },
        remove: () => fs.rmSync(path.join(mnt, 'filler')),
        stopsWrites: true,
        errno: 'ENOSPC',
        quiesce: true,
      },
      {
        name: 'disk full, file in place (steady-state overwrite allocates nothing)',
        inject: () => fill('filler'),
        remove: () => fs.rmSync(path.join(mnt, 'filler')),
        stopsWrites: false,
      },
      {
        name: 'only the directory 0500 (the in-place overwrite needs no directory write)',
        inject: () => fs.chmodSync(state, 0o500),
        remove: () => fs.chmodSync(state, 0o700),
        stopsWrites: false,
      },
      {
        // The daemon opens the file with O_NOATIME, which only the file's owner may use: it
        // gets EPERM, drops the flag and keeps writing in place.
        name: "the file owned by root, mode 0666 (another owner's file: O_NOATIME refused)",
        inject: () => {
          fs.chownSync(file, 0, 0);
          fs.chmodSync(file, 0o666);
        },
        remove: () => {
          fs.chownSync(file, NOBODY, NOBODY);
          fs.chmodSync(file, 0o600);
        },
        stopsWrites: false,
      },
      {
        name: 'only the file 0400 (refused, not replaced behind the operator)',
        inject: () => fs.chmodSync(file, 0o400),
        remove: () => fs.chmodSync(file, 0o600),
        stopsWrites: true,
        errno: 'EACCES',
      },
    ];

    const report: Record<string, unknown> = {};
    const problems: string[] = [];
    let injected = 0;
    for (const f of faults) {
      const during: Record<string, number> = {};
      const after: Record<string, number> = {};
      const errnos = new Set<string>();
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        // Serving normally first.
        const warm = nextEpoch();
        await waitFor(warm, 40, (o) => o.tick !== undefined);
        if (f.quiesce) await load.drain();
        f.inject();
        injected++;
        const faultEpoch = nextEpoch();
        load.resume();
        await waitFor(faultEpoch, 60, () => true);
        // Every call sent during the fault settles while it is still in place.
        await load.drain();
        f.remove();
        const afterEpoch = nextEpoch();
        load.resume();
        await waitFor(afterEpoch, 40, () => true);
        expect(daemon.alive(), `the daemon died during '${f.name}': ${daemon.stderr()}`).toBe(true);

        for (const o of byEpoch.get(faultEpoch) ?? []) {
          tally(during, o.error ? errorLabel(o.error) : 'ok');
          if (o.error) {
            const m = /: (E[A-Z]+) \(/.exec(o.error.message);
            errnos.add(m ? (m[1] as string) : o.error.message);
            if (o.error.message.includes('\n')) problems.push(`${f.name}: multi-line error text`);
          }
        }
        for (const o of byEpoch.get(afterEpoch) ?? []) tally(after, o.error ? errorLabel(o.error) : 'ok');
        // Nothing acknowledged may be missing from the file.
        const onDisk = readTickStrict(file);
        if (onDisk < maxBig(seen)) problems.push(`${f.name}: file ${onDisk} < acknowledged ${maxBig(seen)}`);
      }
      report[f.name] = { 'calls sent during the fault': during, 'calls sent after it was removed': after, errnos: [...errnos].join(', ') || 'none' };

      const faultTotal = Object.values(during).reduce((a, b) => a + b, 0);
      expect(faultTotal, `no call was answered during '${f.name}'`).toBeGreaterThan(0);
      if (f.stopsWrites) {
        expect(during, `every call during '${f.name}' gets Error.Persist`).toEqual({ [ERRORS.Persist]: faultTotal });
        expect([...errnos], `the Persist message names ${f.errno}`).toEqual([f.errno]);
      } else {
        expect(during, `'${f.name}' does not stop writes`).toEqual({ ok: faultTotal });
      }
      const afterTotal = Object.values(after).reduce((a, b) => a + b, 0);
      expect(after, `every call after '${f.name}' was removed succeeds`).toEqual({ ok: afterTotal });
    }

    // Outcomes of the whole run: successes and Persist only, nothing else (no timeouts, no
    // dropped calls).
    const all: Record<string, number> = {};
    for (const list of byEpoch.values()) for (const o of list) tally(all, o.error ? errorLabel(o.error) : 'ok');
    await load.stop();
    const fileMode = (fs.statSync(file).mode & 0o777).toString(8);
    const fileUid = fs.statSync(file).uid;
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
    daemon.proc.kill('SIGTERM');
    const code = await daemon.exited;
    const final = readTickStrict(file);
    const lost = [...seen].filter((t) => t > final).length;

    rec.add('faults', injected);
    rec.add('calls', load.calls);
    rec.add('acked', acked);
    rec.add('repeated', repeated);
    rec.add('lost', lost);
    rec.add('restarts', 0);
    rec.add('crashes', code === 0 ? 0 : 1);
    Object.assign(rec.figures, {
      'faults injected (kinds x cycles)': `${injected} (${faults.length} x ${CYCLES})`,
      'calls made / acknowledged': `${load.calls} / ${acked}`,
      'all outcomes': all,
      'remount retries (EBUSY while a write was open)': remountRetries,
      'tick file after the run: mode, owner uid': `0${fileMode}, ${fileUid}`,
      ...Object.fromEntries(Object.entries(report).map(([k, v]) => [`outcome: ${k}`, v])),
    });
    rec.notes.push(
      'With in-place writes a full disk alone does not fail a steady-state overwrite: the block is already allocated. A real ENOSPC needs the re-create path (the file removed, then the disk filled), which the suite also injects.',
      'A read-only file in a writable directory does not stop the daemon: its write falls back to the atomic replace (temp file + rename), which re-creates the file with mode 0600. A read-only directory alone does not stop it either (the overwrite needs no directory write). Only both together, a read-only or full filesystem, or a missing directory give Error.Persist.',
      'While the file or its directory is gone, the durable record is gone with it: a daemon killed in that window would start again from 0 (a missing file means a fresh clock, as the core specifies). The running daemon keeps its tick in memory and writes it back as soon as it can.',
    );

    expect(problems).toEqual([]);
    expect(Object.keys(all).sort()).toEqual([ERRORS.Persist, 'ok'].sort());
    expect(repeated).toBe(0);
    expect(lost).toBe(0);
    expect(code).toBe(0);
    expect(final).toBe(maxBig(seen));
    expect(fileMode).toBe('600');
    expect(fileUid).toBe(NOBODY);
  });
});
