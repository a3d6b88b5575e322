// Every method, property, signal and error of the Chronos object, through our client and
// through third-party clients (gdbus, busctl, dbus-send), on a private dbus-daemon.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChronosClient, ChronosError, parsePhiTimestamp } from '../../src/client/index.js';
import { BUS_NAME, ERRORS, INTERFACE, OBJECT_PATH } from '../../src/dbus/interface.js';
import { run, startBus, startDaemon, stopDaemon, type Daemon, type TestBus } from '../helpers/bus.js';

let bus: TestBus;
let daemon: Daemon;
let client: ChronosClient;
let tickFile: string;

const env = () => ({ DBUS_SESSION_BUS_ADDRESS: bus.address });
const dbusSend = (...args: string[]) =>
  run('dbus-send', ['--session', '--print-reply', `--dest=${BUS_NAME}`, ...args], { env: env() });
const busctl = (...args: string[]) => run('busctl', [`--address=${bus.address}`, ...args]);
const gdbus = (method: string, ...args: string[]) =>
  run('gdbus', ['call', '--session', '-d', BUS_NAME, '-o', OBJECT_PATH, '-m', method, ...args], { env: env() });

beforeAll(async () => {
  bus = await startBus();
  tickFile = path.join(bus.dir, 'state', 'tick.dat');
  daemon = await startDaemon(bus.address, tickFile);
  client = await ChronosClient.connect({ address: bus.address });
});

afterAll(async () => {
  await client?.close();
  if (daemon) await stopDaemon(daemon);
  await bus?.stop();
});

describe('org.jesternet.Chronos through the client library', () => {
  it('GetTick is 0 on a fresh clock and changes nothing', async () => {
    expect(await client.getTick()).toBe(0n);
    expect(await client.getTick()).toBe(0n);
    expect(fs.readFileSync(tickFile, 'utf8')).toBe('0\n');
  });

  it('NextTick adds one, is durable in the tick file when it returns, and GetTick follows', async () => {
    const t = await client.nextTick();
    expect(t).toBe(1n);
    expect(fs.readFileSync(tickFile, 'utf8')).toBe('1\n');
    expect(await client.getTick()).toBe(1n);
  });

  it('GetPhiTimestamp advances the tick and returns a well-formed stamp', async () => {
    const before = BigInt(Date.now()) * 1_000_000n;
    const s = await client.getPhiTimestamp('CLAUDE-A');
    const after = BigInt(Date.now() + 1) * 1_000_000n;
    expect(s).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z::CLAUDE-A::TICK-0000000002$/);
    const p = parsePhiTimestamp(s);
    expect(p.tick).toBe(2n);
    expect(p.utcNs >= before && p.utcNs <= after).toBe(true);
    expect(fs.readFileSync(tickFile, 'utf8')).toBe('2\n');
  });

  it('stamps in tick order never go backwards in UTC', async () => {
    const stamps = await Promise.all(Array.from({ length: 200 }, (_, i) => client.getPhiTimestamp(`agent-${i % 7}`)));
    const parsed = stamps.map(parsePhiTimestamp).sort((a, b) => (a.tick < b.tick ? -1 : 1));
    for (let i = 1; i < parsed.length; i++) {
      expect(parsed[i]!.tick).toBe(parsed[i - 1]!.tick + 1n);
      expect(parsed[i]!.utcNs >= parsed[i - 1]!.utcNs).toBe(true);
    }
  });

  it('LogEvent returns valid JSON, writes it to stdout and emits EventLogged', async () => {
    const seen: string[] = [];
    const unsubscribe = await client.onEvent((j) => seen.push(j));
    const details = 'quote " backslash \\ newline \n tab \t bell \u0007 unicode 日本 😀 \u2028';
    const json = await client.logEvent('AGENT-7', 'deploy', 'ok', details);
    const rec = JSON.parse(json);
    expect(Object.keys(rec)).toEqual(['timestamp', 'action', 'status', 'details']);
    expect(rec.action).toBe('deploy');
    expect(rec.details).toBe(details);
    expect(parsePhiTimestamp(rec.timestamp).agentId).toBe('AGENT-7');
    const noDetails = JSON.parse(await client.logEvent('AGENT-7', 'a', 's'));
    expect(Object.keys(noDetails)).toEqual(['timestamp', 'action', 'status']);
    await expect.poll(() => seen.length).toBe(2);
    expect(seen[0]).toBe(json);
    unsubscribe();
    await expect.poll(() => daemon.stdout().includes(`${json}\n`)).toBe(true);
  });

  it('Tick and Version properties, and ping in one round trip', async () => {
    const t = await client.getTick();
    const p = await client.ping();
    expect(p.tick).toBe(t);
    expect(p.version).toBe(JSON.parse(fs.readFileSync(path.join(__dirname, '../../package.json'), 'utf8')).version);
    await client.peerPing();
  });

  it('refuses bad agent ids with InvalidAgentId and does not move the tick', async () => {
    const t = await client.getTick();
    for (const bad of ['', 'a::b', ':a', 'a:', 'a\u0001', 'a\u007f', 'a\u0085', 'x'.repeat(256), 'é'.repeat(128)]) {
      const err = await client.getPhiTimestamp(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChronosError);
      expect((err as ChronosError).code).toBe('InvalidAgentId');
      expect((err as ChronosError).dbusName).toBe(ERRORS.InvalidAgentId);
      expect((err as ChronosError).message).not.toMatch(/\n|at .*\.js/);
      const err2 = await client.logEvent(bad, 'a', 'b').catch((e: unknown) => e);
      expect((err2 as ChronosError).code).toBe('InvalidAgentId');
    }
    expect(await client.getPhiTimestamp('x'.repeat(255))).toContain('::TICK-');
    expect(await client.getTick()).toBe(t + 1n);
  });

  it('refuses oversized action, status and details with InvalidArgument', async () => {
    const t = await client.getTick();
    const cases: Array<[string, string, string]> = [
      ['a'.repeat(256), 's', ''],
      ['a', 's'.repeat(256), ''],
      ['a', 's', 'd'.repeat(65537)],
    ];
    for (const [a, s, d] of cases) {
      const err = (await client.logEvent('A', a, s, d).catch((e: unknown) => e)) as ChronosError;
      expect(err.dbusName).toBe(ERRORS.InvalidArgument);
    }
    expect(await client.getTick()).toBe(t);
    const ok = JSON.parse(await client.logEvent('A', 'a'.repeat(255), 's'.repeat(255), 'd'.repeat(65536)));
    expect(ok.details.length).toBe(65536);
  });

  it('a string D-Bus cannot carry (NUL) is refused before it is sent', async () => {
    const err = (await client.getPhiTimestamp('a\u0000b').catch((e: unknown) => e)) as ChronosError;
    expect(err).toBeInstanceOf(ChronosError);
    expect(err.code).toBe('InvalidArgument');
  });
});

describe('third-party clients', () => {
  it('dbus-send: the Phase 2 guide introspection step', () => {
    const r = dbusSend(OBJECT_PATH, 'org.freedesktop.DBus.Introspectable.Introspect');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`<interface name="${INTERFACE}">`);
    for (const m of ['GetTick', 'NextTick', 'GetPhiTimestamp', 'LogEvent', 'Shutdown']) expect(r.stdout).toContain(`<method name="${m}">`);
    expect(r.stdout).toContain('<arg name="agent_id" type="s" direction="in"/>');
  });

  it('dbus-send: NextTick, GetTick, GetPhiTimestamp, LogEvent', () => {
    const n = dbusSend(OBJECT_PATH, `${INTERFACE}.NextTick`);
    expect(n.code).toBe(0);
    const tick = BigInt(/uint64 (\d+)/.exec(n.stdout)![1]!);
    expect(dbusSend(OBJECT_PATH, `${INTERFACE}.GetTick`).stdout).toContain(`uint64 ${tick}`);
    const s = dbusSend(OBJECT_PATH, `${INTERFACE}.GetPhiTimestamp`, 'string:SEND');
    expect(s.stdout).toMatch(new RegExp(`Z::SEND::TICK-${String(tick + 1n).padStart(10, '0')}`));
    const l = dbusSend(OBJECT_PATH, `${INTERFACE}.LogEvent`, 'string:SEND', 'string:act', 'string:ok', 'string:');
    expect(l.stdout).toContain('"action":"act","status":"ok"}');
  });

  it('busctl: methods, properties, introspection', () => {
    const n = busctl('call', BUS_NAME, OBJECT_PATH, INTERFACE, 'NextTick');
    expect(n.code).toBe(0);
    const tick = BigInt(/^t (\d+)/.exec(n.stdout)![1]!);
    expect(busctl('get-property', BUS_NAME, OBJECT_PATH, INTERFACE, 'Tick').stdout.trim()).toBe(`t ${tick}`);
    expect(busctl('get-property', BUS_NAME, OBJECT_PATH, INTERFACE, 'Version').stdout).toMatch(/^s "\d+\.\d+\.\d+/);
    const s = busctl('call', BUS_NAME, OBJECT_PATH, INTERFACE, 'GetPhiTimestamp', 's', 'BUSCTL');
    expect(s.stdout).toMatch(/^s ".*::BUSCTL::TICK-\d{10}"/);
    const l = busctl('--json=short', 'call', BUS_NAME, OBJECT_PATH, INTERFACE, 'LogEvent', 'ssss', 'BUSCTL', 'x', 'y', 'z');
    expect(JSON.parse(JSON.parse(l.stdout).data[0]).details).toBe('z');
    const intro = busctl('introspect', BUS_NAME, OBJECT_PATH, INTERFACE);
    expect(intro.stdout).toMatch(/\.GetPhiTimestamp\s+method\s+s\s+s/);
    expect(intro.stdout).toMatch(/\.LogEvent\s+method\s+ssss\s+s/);
    expect(intro.stdout).toMatch(/\.EventLogged\s+signal\s+s/);
    expect(intro.stdout).toMatch(/\.Tick\s+property\s+t/);
    const tree = busctl('tree', BUS_NAME);
    expect(tree.stdout).toContain(OBJECT_PATH);
  });

  it('gdbus: methods, GetAll, Peer', () => {
    expect(gdbus(`${INTERFACE}.NextTick`).stdout).toMatch(/^\(uint64 \d+,\)/);
    expect(gdbus(`${INTERFACE}.GetPhiTimestamp`, 'GDBUS').stdout).toMatch(/::GDBUS::TICK-/);
    expect(gdbus('org.freedesktop.DBus.Properties.GetAll', INTERFACE).stdout).toMatch(/'Tick': <uint64 \d+>, 'Version': <'/);
    expect(gdbus('org.freedesktop.DBus.Peer.Ping').stdout.trim()).toBe('()');
    const id = gdbus('org.freedesktop.DBus.Peer.GetMachineId');
    if (fs.existsSync('/etc/machine-id') || fs.existsSync('/var/lib/dbus/machine-id')) expect(id.stdout).toMatch(/^\('[0-9a-f]{32}',\)/);
    else expect(id.stderr).toContain(ERRORS.Failed);
  });

  it('gdbus monitor sees EventLogged', async () => {
    const { spawn } = await import('node:child_process');
    const mon = spawn('gdbus', ['monitor', '--session', '-d', BUS_NAME, '-o', OBJECT_PATH], { env: { ...process.env, ...env() } });
    let out = '';
    mon.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await expect.poll(() => out.length > 0, { timeout: 10_000 }).toBe(true);
    const json = await client.logEvent('MON', 'watch', 'ok');
    await expect.poll(() => out.includes('EventLogged'), { timeout: 10_000 }).toBe(true);
    expect(out).toContain(JSON.parse(json).timestamp);
    mon.kill();
  });
});

describe('errors, by name, with one-line messages', () => {
  const cases: Array<[string, string[], string]> = [
    ['wrong signature on NextTick', ['call', BUS_NAME, OBJECT_PATH, INTERFACE, 'NextTick', 's', 'x'], ERRORS.InvalidArgs],
    ['wrong signature on GetPhiTimestamp', ['call', BUS_NAME, OBJECT_PATH, INTERFACE, 'GetPhiTimestamp', 'u', '5'], ERRORS.InvalidArgs],
    ['missing args on LogEvent', ['call', BUS_NAME, OBJECT_PATH, INTERFACE, 'LogEvent', 'ss', 'a', 'b'], ERRORS.InvalidArgs],
    ['unknown method', ['call', BUS_NAME, OBJECT_PATH, INTERFACE, 'Frobnicate'], ERRORS.UnknownMethod],
    ['unknown interface', ['call', BUS_NAME, OBJECT_PATH, 'org.example.Nope', 'GetTick'], ERRORS.UnknownInterface],
    ['unknown object', ['call', BUS_NAME, '/org/jesternet/Other', INTERFACE, 'GetTick'], ERRORS.UnknownObject],
    ['unknown property', ['get-property', BUS_NAME, OBJECT_PATH, INTERFACE, 'Nope'], ERRORS.UnknownProperty],
    ['setting Tick', ['set-property', BUS_NAME, OBJECT_PATH, INTERFACE, 'Tick', 't', '5'], ERRORS.PropertyReadOnly],
    ['setting Version', ['set-property', BUS_NAME, OBJECT_PATH, INTERFACE, 'Version', 's', 'x'], ERRORS.PropertyReadOnly],
    ['bad agent id', ['call', BUS_NAME, OBJECT_PATH, INTERFACE, 'GetPhiTimestamp', 's', 'a::b'], ERRORS.InvalidAgentId],
  ];
  it.each(cases)('%s', (_what, args, name) => {
    const before = busctl('get-property', BUS_NAME, OBJECT_PATH, INTERFACE, 'Tick').stdout;
    const r = run('busctl', [`--address=${bus.address}`, '--verbose', ...args]);
    expect(r.code).not.toBe(0);
    // busctl prints the message; dbus-send prints the error name: check both views.
    const ds = args[0] === 'call' && args.length === 5
      ? run('dbus-send', ['--session', '--print-reply', `--dest=${BUS_NAME}`, args[2]!, `${args[3]}.${args[4]}`], { env: env() })
      : null;
    if (ds) expect(ds.stderr).toContain(`Error ${name}`);
    expect(r.stderr.trim().split('\n').length).toBe(1);
    expect(r.stderr).not.toMatch(/\.js:\d+|at Object|stack/i);
    expect(busctl('get-property', BUS_NAME, OBJECT_PATH, INTERFACE, 'Tick').stdout).toBe(before);
  });

  it('gdbus shows the error names for a wrong signature, a read-only property and an unknown method', () => {
    expect(gdbus(`${INTERFACE}.NextTick`, 'extra').stderr).toContain(ERRORS.InvalidArgs);
    expect(
      gdbus('org.freedesktop.DBus.Properties.Set', INTERFACE, 'Tick', '<uint64 5>').stderr,
    ).toContain(ERRORS.PropertyReadOnly);
    expect(gdbus(`${INTERFACE}.Nope`).stderr).toContain(ERRORS.UnknownMethod);
  });

  it('dbus-send shows InvalidAgentId and InvalidArgument by name', () => {
    expect(dbusSend(OBJECT_PATH, `${INTERFACE}.GetPhiTimestamp`, 'string:').stderr).toContain(`Error ${ERRORS.InvalidAgentId}`);
    expect(
      dbusSend(OBJECT_PATH, `${INTERFACE}.LogEvent`, 'string:A', `string:${'a'.repeat(300)}`, 'string:s', 'string:').stderr,
    ).toContain(`Error ${ERRORS.InvalidArgument}`);
  });

  it('a call flagged no-reply-expected still advances the tick, silently', async () => {
    const t = await client.getTick();
    const r = run('dbus-send', ['--session', '--type=method_call', `--dest=${BUS_NAME}`, OBJECT_PATH, `${INTERFACE}.NextTick`], { env: env() });
    expect(r.code).toBe(0);
    await expect.poll(() => client.getTick()).toBe(t + 1n);
  });
});
