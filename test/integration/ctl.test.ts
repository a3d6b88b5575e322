// chronos-ctl: every command, --json, and every exit code, against a real daemon.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePhiTimestamp } from '../../src/client/index.js';
import { BUNDLE, NODE, ctl, run, startBus, startDaemon, stopDaemon, tempDir, type Daemon, type TestBus } from '../helpers/bus.js';

let bus: TestBus;
let daemon: Daemon;
const NOBODY = 65534;

beforeAll(async () => {
  bus = await startBus();
  // Let another uid reach the socket (for the access-denied case).
  fs.chmodSync(bus.dir, 0o755);
  daemon = await startDaemon(bus.address, path.join(bus.dir, 'state', 'tick.dat'));
});

afterAll(async () => {
  if (daemon) await stopDaemon(daemon);
  await bus?.stop();
});

const c = (...args: string[]) => ctl(bus.address, args);

describe('plain output', () => {
  it('tick and next print the number alone', () => {
    expect(c('tick')).toMatchObject({ code: 0, stdout: '0\n', stderr: '' });
    expect(c('next')).toMatchObject({ code: 0, stdout: '1\n', stderr: '' });
    expect(c('next').stdout).toBe('2\n');
    expect(c('tick').stdout).toBe('2\n');
  });

  it('ping prints one line with the version and tick', () => {
    const r = c('ping');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^chronosd-dbus \d+\.\d+\.\d+\S* is running, tick 2\n$/);
  });

  it('stamp prints the Phi timestamp', () => {
    const r = c('stamp', 'SCRIPT-1');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z::SCRIPT-1::TICK-0000000003\n$/);
  });

  it('log prints the JSON record, details optional', () => {
    const r = c('log', 'SCRIPT-1', 'backup', 'ok', 'nightly "full"');
    expect(r.code).toBe(0);
    const rec = JSON.parse(r.stdout);
    expect(rec).toMatchObject({ action: 'backup', status: 'ok', details: 'nightly "full"' });
    expect(parsePhiTimestamp(rec.timestamp).tick).toBe(4n);
    expect(JSON.parse(c('log', 'SCRIPT-1', 'a', 'b').stdout)).not.toHaveProperty('details');
    // Details that look like options pass after --.
    expect(JSON.parse(c('log', 'S', 'a', 'b', '--', '--json').stdout).details).toBe('--json');
  });

  it('version works without a daemon', () => {
    const r = run(NODE, [BUNDLE, 'ctl', '--address', 'unix:path=/nonexistent/bus', 'version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^chronos-ctl \d+\.\d+\.\d+\S* \(node v\d+\.\d+\.\d+\)\n$/);
  });

  it('help and --help print usage with the exit codes', () => {
    for (const args of [['help'], ['--help'], ['-h']]) {
      const r = c(...args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/ping/);
      expect(r.stdout).toMatch(/Exit codes: 0 success, 1 .*2 usage error, 3 .*4 access denied/);
    }
    const sub = c('stamp', '--help');
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/AGENT-ID/);
    expect(c('help', 'log').stdout).toMatch(/ACTION/);
  });

  it('global options may come before or after the command', () => {
    expect(run(NODE, [BUNDLE, 'ctl', '--json', '--address', bus.address, 'tick']).stdout).toMatch(/^\{"tick":\d+\}\n$/);
    expect(run(NODE, [BUNDLE, 'ctl', 'tick', '--address', bus.address, '--json']).stdout).toMatch(/^\{"tick":\d+\}\n$/);
    expect(run(NODE, [BUNDLE, 'ctl', `--address=${bus.address}`, '--timeout=5000', 'tick']).code).toBe(0);
  });
});

describe('--json', () => {
  it('every command prints one JSON object', () => {
    const t = JSON.parse(c('--json', 'tick').stdout);
    expect(Object.keys(t)).toEqual(['tick']);
    const n = JSON.parse(c('--json', 'next').stdout);
    expect(n.tick).toBe(t.tick + 1);
    const p = JSON.parse(c('--json', 'ping').stdout);
    expect(p).toMatchObject({ ok: true, tick: n.tick });
    expect(typeof p.version).toBe('string');
    const s = JSON.parse(c('--json', 'stamp', 'J').stdout);
    expect(Object.keys(s)).toEqual(['timestamp', 'utc', 'agent_id', 'tick']);
    expect(s.agent_id).toBe('J');
    expect(s.tick).toBe(n.tick + 1);
    expect(s.timestamp).toBe(`${s.utc}::J::TICK-${String(s.tick).padStart(10, '0')}`);
    const l = JSON.parse(c('--json', 'log', 'J', 'a', 'b', 'c').stdout);
    expect(Object.keys(l)).toEqual(['timestamp', 'action', 'status', 'details']);
    const v = JSON.parse(c('--json', 'version').stdout);
    expect(Object.keys(v)).toEqual(['name', 'version', 'node']);
  });

  it('errors in --json mode print a JSON object too, and still a line on stderr', () => {
    const r = c('--json', 'stamp', 'a::b');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: 'InvalidAgentId', dbus_error: 'org.jesternet.Chronos.Error.InvalidAgentId', exit: 1 });
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('ticks above 2^53 are printed exactly', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'tick.dat');
    fs.writeFileSync(file, '18446744073709551610\n');
    const b2 = await startBus();
    const d2 = await startDaemon(b2.address, file);
    try {
      expect(ctl(b2.address, ['--json', 'next']).stdout).toBe('{"tick":18446744073709551611}\n');
      expect(ctl(b2.address, ['next']).stdout).toBe('18446744073709551612\n');
    } finally {
      await stopDaemon(d2);
      await b2.stop();
    }
  });
});

describe('exit codes', () => {
  it('1: the daemon answered with an error, one line on stderr', () => {
    for (const args of [['stamp', 'a::b'], ['stamp', ':x'], ['log', 'A', 'x'.repeat(300), 's']]) {
      const r = c(...args);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^chronos-ctl: .+ \(org\.jesternet\.Chronos\.Error\.Invalid(AgentId|Argument)\)\n$/);
    }
  });

  it('2: usage errors', () => {
    for (const args of [[], ['frobnicate'], ['stamp'], ['log', 'A', 'b'], ['tick', 'extra'], ['tick', '--bogus'], ['--timeout', 'abc', 'tick'], ['--timeout'], ['--session', '--system', 'tick'], ['help', 'nope']]) {
      const r = c(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^chronos-ctl: /);
      expect(r.stderr).not.toMatch(/\.js:\d+|\n\s+at /);
    }
  });

  it('3: no daemon on the bus, no bus at all, or no answer in time', async () => {
    const empty = await startBus();
    try {
      for (const cmd of ['ping', 'tick', 'next', 'stamp', 'shutdown']) {
        const r = ctl(empty.address, cmd === 'stamp' ? [cmd, 'A'] : [cmd]);
        expect(r.code, cmd).toBe(3);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }
      expect(ctl('unix:path=/nonexistent/bus', ['tick']).code).toBe(3);
      const noEnv = run(NODE, [BUNDLE, 'ctl', '--session', 'tick'], { env: { DBUS_SESSION_BUS_ADDRESS: '', XDG_RUNTIME_DIR: '/nonexistent' } });
      expect(noEnv.code).toBe(3);
      expect(noEnv.stderr).toMatch(/no session bus/);
      // A stopped (SIGSTOP) daemon owns the name but cannot answer: --timeout applies.
      const stuck = await startDaemon(empty.address, path.join(empty.dir, 'tick.dat'));
      stuck.proc.kill('SIGSTOP');
      const t = ctl(empty.address, ['--timeout', '300', 'tick']);
      expect(t.code).toBe(3);
      expect(t.stderr).toMatch(/no reply within 300 ms/);
      stuck.proc.kill('SIGCONT');
      await stopDaemon(stuck);
    } finally {
      await empty.stop();
    }
  });

  it('4: access denied, when another uid asks for Shutdown; the daemon keeps serving', () => {
    const r = run(NODE, [BUNDLE, 'ctl', '--address', bus.address, 'shutdown'], { uid: NOBODY, gid: NOBODY });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^chronos-ctl: Shutdown is for root or uid 0; caller is uid 65534 \(org\.freedesktop\.DBus\.Error\.AccessDenied\)\n$/);
    // The same user may use the clock.
    const n = run(NODE, [BUNDLE, 'ctl', '--address', bus.address, 'next'], { uid: NOBODY, gid: NOBODY });
    expect(n.code).toBe(0);
    expect(c('tick').stdout).toBe(n.stdout);
  });
});

describe('watch', () => {
  it('prints each EventLogged record as one JSON line until interrupted', async () => {
    const w = spawn(NODE, [BUNDLE, 'ctl', '--address', bus.address, 'watch'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    w.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // The watcher has subscribed once a first event, sent repeatedly, reaches it.
    await expect.poll(() => {
      c('log', 'W', 'probe', 'ok');
      return out.length > 0;
    }, { timeout: 20_000, interval: 200 }).toBe(true);
    const a = JSON.parse(c('log', 'W', 'one', 'ok').stdout);
    const b = JSON.parse(c('log', 'W', 'two', 'ok', 'multi\nline').stdout);
    await expect.poll(() => out.includes(b.timestamp)).toBe(true);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-2)).toEqual(a);
    expect(lines.at(-1)).toEqual(b);
    w.kill('SIGINT');
    const code = await new Promise((r) => w.once('exit', (c2) => r(c2)));
    expect(code).toBe(0);
  });
});

describe('shutdown', () => {
  it('root shutdown stops the daemon with exit 0 and the tick durable', async () => {
    const t = c('tick').stdout.trim();
    const r = c('shutdown');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('chronosd-dbus is shutting down\n');
    expect(await daemon.exited).toBe(0);
    expect(fs.readFileSync(path.join(bus.dir, 'state', 'tick.dat'), 'utf8')).toBe(`${t}\n`);
    expect(daemon.stderr()).toMatch(/stopped \(Shutdown called\); tick \d+ durable/);
    expect(c('tick').code).toBe(3);
  });
});
