import { describe, expect, it } from 'vitest';
import { BUS_NAME, ERRORS, INTERFACE, METHODS, OBJECT_PATH, introspectXml } from '../../src/dbus/interface.js';
import { chooseBus, busAddress, connectableAddress } from '../../src/dbus/bus.js';
import { modeFor } from '../../src/dispatch.js';

describe('interface module', () => {
  it('names and signatures are the ones the product promises', () => {
    expect([BUS_NAME, OBJECT_PATH, INTERFACE]).toEqual(['org.jesternet.Chronos', '/org/jesternet/Chronos', 'org.jesternet.Chronos']);
    const sigs = Object.fromEntries(Object.entries(METHODS).map(([k, m]) => [k, `${m.inSignature}->${m.outSignature}`]));
    expect(sigs).toEqual({ GetTick: '->t', NextTick: '->t', GetPhiTimestamp: 's->s', LogEvent: 'ssss->s', Shutdown: '->' });
    for (const name of Object.values(ERRORS)) expect(name).toMatch(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/);
  });

  it('introspects the object with argument names and every ancestor with its child', () => {
    const xml = introspectXml(OBJECT_PATH)!;
    expect(xml).toContain('<method name="GetPhiTimestamp">\n      <arg name="agent_id" type="s" direction="in"/>\n      <arg name="timestamp" type="s" direction="out"/>');
    expect(xml).toContain('<signal name="EventLogged">\n      <arg name="log_json" type="s"/>');
    expect(xml).toContain('<property name="Tick" type="t" access="read">');
    expect(introspectXml('/')).toContain('<node name="org"/>');
    expect(introspectXml('/org/jesternet')).toContain('<node name="Chronos"/>');
    expect(introspectXml('/org/other')).toBeNull();
    expect(introspectXml('/org/jesternet/Chronos/x')).toBeNull();
  });
});

describe('bus selection', () => {
  it('--system beats --session beats CHRONOS_USE_SESSION_BUS', () => {
    expect(chooseBus({}, {})).toBe('system');
    expect(chooseBus({}, { CHRONOS_USE_SESSION_BUS: '1' })).toBe('session');
    expect(chooseBus({}, { CHRONOS_USE_SESSION_BUS: '' })).toBe('system');
    expect(chooseBus({ session: true }, {})).toBe('session');
    expect(chooseBus({ system: true }, { CHRONOS_USE_SESSION_BUS: '1' })).toBe('system');
  });

  it('honours DBUS_SYSTEM_BUS_ADDRESS and DBUS_SESSION_BUS_ADDRESS', () => {
    expect(busAddress('system', {})).toBe('unix:path=/var/run/dbus/system_bus_socket');
    expect(busAddress('system', { DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/x' })).toBe('unix:path=/x');
    expect(busAddress('session', { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/y' })).toBe('unix:path=/y');
    expect(() => busAddress('session', {})).toThrow(/no session bus/);
  });

  it('rewrites addresses into what dbus-next connects to without native modules', () => {
    expect(connectableAddress('unix:path=/run/bus')).toBe('unix:socket=/run/bus');
    expect(connectableAddress('unix:abstract=/tmp/dbus-XYZ,guid=abc')).toBe('unix:socket=\0/tmp/dbus-XYZ');
    expect(connectableAddress('unix:path=/a%20b')).toBe('unix:socket=/a b');
    expect(connectableAddress('unix:tmpdir=/tmp;unix:path=/ok')).toBe('unix:socket=/ok');
    expect(() => connectableAddress('unix:tmpdir=/tmp')).toThrow(/cannot connect/);
  });
});

describe('dispatch on the invoked name', () => {
  it.each([
    ['/usr/local/bin/chronosd-dbus', ['--session'], 'daemon', ['--session']],
    ['chronos-ctl', ['tick'], 'ctl', ['tick']],
    ['./chronos-ctl', ['tick'], 'ctl', ['tick']],
    ['/opt/chronos', ['daemon', '--session'], 'daemon', ['--session']],
    ['chronos', ['ctl', 'next'], 'ctl', ['next']],
    ['chronos.cjs', ['ctl', 'next'], 'ctl', ['next']],
    ['chronos', ['--version'], 'version', []],
    ['chronos', ['frobnicate'], 'usage', ['frobnicate']],
  ])('%s %j -> %s', (argv0, args, mode, rest) => {
    expect(modeFor(argv0, args)).toEqual({ mode, args: rest });
  });
});
