// The daemon's life: bus and file selection, name ownership, signals, Shutdown, bus loss.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChronosClient } from '../../src/client/index.js';
import { BUNDLE, NODE, ctl, readTick, run, startBus, startDaemon, stopDaemon, tempDir, type TestBus } from '../helpers/bus.js';

let bus: TestBus;
beforeAll(async () => {
  bus = await startBus();
});
afterAll(async () => {
  await bus?.stop();
});

/** Starts the daemon with only environment variables choosing bus and file. */
async function startWithEnv(env: NodeJS.ProcessEnv, args: string[] = []) {
  const p = spawn(NODE, [BUNDLE, 'daemon', ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve) => {
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/serving/.test(err)) resolve();
    });
    p.once('exit', () => resolve());
  });
  return { p, err: () => err, exited: new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', (c) => r(c)))) };
}

describe('choosing the bus and the tick file', () => {
  it('CHRONOS_USE_SESSION_BUS picks the session bus and $XDG_STATE_HOME/chronos/tick.dat', async () => {
    const state = tempDir();
    const d = await startWithEnv({ CHRONOS_USE_SESSION_BUS: '1', DBUS_SESSION_BUS_ADDRESS: bus.address, XDG_STATE_HOME: state });
    expect(d.err()).toMatch(/on the session bus/);
    const file = path.join(state, 'chronos', 'tick.dat');
    expect(d.err()).toContain(`tick file ${file}`);
    expect(run(NODE, [BUNDLE, 'ctl', 'next'], { env: { CHRONOS_USE_SESSION_BUS: '1', DBUS_SESSION_BUS_ADDRESS: bus.address } }).stdout).toBe('1\n');
    expect(readTick(file)).toBe(1n);
    d.p.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });

  it('--session with HOME only: ~/.local/state/chronos/tick.dat; STATE_DIRECTORY wins', async () => {
    const home = tempDir();
    const a = await startWithEnv({ DBUS_SESSION_BUS_ADDRESS: bus.address, HOME: home }, ['--session']);
    expect(a.err()).toContain(`tick file ${path.join(home, '.local', 'state', 'chronos', 'tick.dat')}`);
    a.p.kill('SIGTERM');
    await a.exited;
    const sd = tempDir();
    const b = await startWithEnv({ DBUS_SESSION_BUS_ADDRESS: bus.address, HOME: home, STATE_DIRECTORY: sd }, ['--session']);
    expect(b.err()).toContain(`tick file ${path.join(sd, 'tick.dat')}`);
    b.p.kill('SIGTERM');
    await b.exited;
  });

  it('the system bus by default, at DBUS_SYSTEM_BUS_ADDRESS', async () => {
    const d = await startWithEnv({ DBUS_SYSTEM_BUS_ADDRESS: bus.address }, ['--tick-file', path.join(tempDir(), 't')]);
    expect(d.err()).toMatch(/on the system bus/);
    expect(run(NODE, [BUNDLE, 'ctl', 'tick'], { env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address } }).stdout).toBe('0\n');
    d.p.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });

  it('no bus to reach: exit 3 with one line', async () => {
    const d = await startWithEnv({}, ['--address', 'unix:path=/nonexistent/bus', '--tick-file', path.join(tempDir(), 't')]);
    expect(await d.exited).toBe(3);
    expect(d.err().trim().split('\n')).toHaveLength(1);
    expect(d.err()).toMatch(/cannot connect to the bus/);
  });

  it('--version, --help, and usage errors (exit 2)', () => {
    expect(run(NODE, [BUNDLE, 'daemon', '--version']).stdout).toMatch(/^chronosd-dbus \d+\.\d+\.\d+\S* \(node v\d+/);
    const h = run(NODE, [BUNDLE, 'daemon', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/--tick-file/);
    for (const bad of [['--bogus'], ['extra'], ['--session', '--system'], ['--tick-file']]) {
      const r = run(NODE, [BUNDLE, 'daemon', ...bad]);
      expect(r.code, bad.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^chronosd-dbus: /);
    }
  });
});

describe('owning the name', () => {
  it('a second daemon on the same bus exits non-zero and leaves the first serving', async () => {
    const first = await startDaemon(bus.address, path.join(tempDir(), 'tick.dat'));
    const second = await startDaemon(bus.address, path.join(tempDir(), 'tick.dat'));
    expect(await second.exited).toBe(4);
    expect(second.stderr().trim()).toMatch(/^chronosd-dbus: org\.jesternet\.Chronos is already owned on the bus .* by another process; not taking it over$/);
    expect(first.proc.exitCode).toBeNull();
    expect(ctl(bus.address, ['next']).stdout).toBe('1\n');
    await stopDaemon(first);
  });
});

describe('stopping', () => {
  it('SIGTERM under load: calls in flight are answered, the tick is durable, exit 0', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    const d = await startDaemon(bus.address, file);
    const clients = await Promise.all(Array.from({ length: 8 }, () => ChronosClient.connect({ address: bus.address, timeoutMs: 5000 })));
    const acked: bigint[] = [];
    const failures: string[] = [];
    let stop = false;
    const loops = clients.map(async (c) => {
      while (!stop) {
        const r = await Promise.allSettled(Array.from({ length: 10 }, () => c.nextTick()));
        for (const x of r) x.status === 'fulfilled' ? acked.push(x.value) : failures.push(String((x.reason as { dbusName?: string }).dbusName));
        if (r.some((x) => x.status === 'rejected')) return;
      }
    });
    while (acked.length < 2000) await new Promise((r) => setTimeout(r, 5));
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    stop = true;
    await Promise.all(loops);
    await Promise.all(clients.map((c) => c.close()));
    const max = acked.reduce((a, b) => (b > a ? b : a), 0n);
    // Every answer the daemon gave is durable, and the file holds exactly the last one.
    expect(readTick(file)).toBe(max);
    expect(new Set(acked.map(String)).size).toBe(acked.length);
    expect(d.stderr()).toMatch(new RegExp(`stopped \\(SIGTERM\\); tick ${max} durable`));
    // Calls the daemon had received were answered; later ones found the name released.
    expect(failures.length).toBeGreaterThan(0);
    expect(new Set(failures)).toEqual(new Set(['org.freedesktop.DBus.Error.ServiceUnknown']));
  });

  it('Shutdown from root (the client library): reply, durable tick, name released, exit 0', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    const d = await startDaemon(bus.address, file);
    const c = await ChronosClient.connect({ address: bus.address });
    await c.nextTick();
    await c.shutdown();
    expect(await d.exited).toBe(0);
    expect(readTick(file)).toBe(1n);
    const err = await c.getTick().catch((e: { code: string }) => e.code);
    expect(err).toBe('NotRunning');
    await c.close();
  });

  it('the bus going away: the daemon exits non-zero at once, the tick durable; a new daemon continues', async () => {
    const b = await startBus();
    const file = path.join(tempDir(), 'tick.dat');
    const d = await startDaemon(b.address, file);
    const c = await ChronosClient.connect({ address: b.address, timeoutMs: 5000 });
    const acked: bigint[] = [];
    const load = (async () => {
      for (;;) {
        const r = await Promise.allSettled(Array.from({ length: 10 }, () => c.nextTick()));
        for (const x of r) if (x.status === 'fulfilled') acked.push(x.value);
        if (r.some((x) => x.status === 'rejected')) return;
      }
    })();
    while (acked.length < 500) await new Promise((r) => setTimeout(r, 5));
    b.proc.kill('SIGKILL');
    expect(await d.exited).toBe(3);
    await load;
    await c.close();
    expect(d.stderr()).toMatch(/the bus connection was lost/);
    const max = acked.reduce((x, y) => (y > x ? y : x), 0n);
    expect(readTick(file) >= max).toBe(true);
    const b2 = await startBus();
    const d2 = await startDaemon(b2.address, file);
    expect(ctl(b2.address, ['next']).stdout).toBe(`${readTick(file)}\n`);
    expect(BigInt(ctl(b2.address, ['tick']).stdout.trim()) > max).toBe(true);
    await stopDaemon(d2);
    await b2.stop();
  });
});

describe('startup line', () => {
  it('one line on stderr with version, node, bus, name, tick file and tick; nothing per call', async () => {
    const file = path.join(tempDir(), 'tick.dat');
    fs.writeFileSync(file, '7\n');
    const d = await startDaemon(bus.address, file);
    const c = await ChronosClient.connect({ address: bus.address });
    for (let i = 0; i < 50; i++) await c.nextTick();
    await c.getPhiTimestamp('A');
    await c.close();
    await stopDaemon(d);
    const lines = d.stderr().trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^chronosd-dbus: \\d+\\.\\d+\\.\\d+\\S* \\(node v[\\d.]+\\) serving org\\.jesternet\\.Chronos on the bus ${bus.address.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} as :1\\.\\d+; tick file ${file}; tick 7$`));
    expect(lines[1]).toBe(`chronosd-dbus: stopped (SIGTERM); tick 58 durable in ${file}`);
  });
});
