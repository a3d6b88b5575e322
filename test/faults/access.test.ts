// Access control on a system-like bus outside systemd: a root dbus-daemon whose configuration
// is Debian's deny-by-default /usr/share/dbus-1/system.conf, reduced to what runs outside
// systemd (no fork, no setuid helper, no activation, no syslog, our own socket) and including
// OUR packaging/dbus/org.jesternet.Chronos.conf instead of the system's policy directories.
// The daemon runs as the system user chronos with its tick file in a 0700 directory of its
// own; an unprivileged caller (nobody, through setpriv) may call what the policy allows, and
// cannot Shutdown, own the name, or read or write the tick file. On a permissive bus, where no
// policy applies, the daemon's own uid check refuses Shutdown to other uids.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUS_NAME, ERRORS, INTERFACE, OBJECT_PATH, PROPERTIES_INTERFACE } from '../../src/dbus/interface.js';
import {
  IS_ROOT,
  NODE,
  PROFILE,
  ROOT,
  ROOT_SKIP_REASON,
  SEED,
  killDaemon,
  openTempDir,
  permissiveBusConfig,
  privateBundle,
  readTickStrict,
  sh,
  spawnDaemon,
  startBusWith,
  type Bus,
  type Cmd,
  type Daemon,
} from './helpers/env.js';
import { SectionRecorder } from './helpers/report.js';

const SYSTEM_CONF = '/usr/share/dbus-1/system.conf';
const POLICY = path.join(ROOT, 'packaging', 'dbus', 'org.jesternet.Chronos.conf');
const NOBODY = 65534;
const rec = new SectionRecorder('access', 'deny-by-default system bus with our policy; daemon as chronos; caller nobody', PROFILE, SEED);

let dir: string;
let sysBus: Bus | undefined;
let openBus: Bus | undefined;
let daemon: Daemon | undefined;
let other: Daemon | undefined;
let createdUser = false;
let chronosUid = -1;
let bundle = '';
let tickFile = '';
let attempts = 0;
let denied = 0;
const outcomes: Record<string, string> = {};

/**
 * Debian's system.conf with what needs systemd, root-owned paths or the host's policies taken
 * out, listening on `socket`, and including our policy file.
 */
export function systemLikeConfig(text: string, socket: string): string {
  let c = text
    .replace(/<user>[^<]*<\/user>/, '<!-- <user> dropped: the test runs dbus-daemon as root without switching user -->')
    .replace(/<fork\/>/, '')
    .replace(/<standard_system_servicedirs\/>/, '')
    .replace(/<servicehelper>[^<]*<\/servicehelper>/, '')
    .replace(/<pidfile>[^<]*<\/pidfile>/, '')
    .replace(/<syslog\/>/, '')
    .replace(/<listen>[^<]*<\/listen>/, `<listen>unix:path=${socket}</listen>`)
    .replace(/<includedir>[^<]*<\/includedir>/g, '')
    .replace(/<include\b[^>]*>[^<]*<\/include>/g, '');
  c = c.replace(/<\/busconfig>\s*$/, `  <include>${POLICY}</include>\n</busconfig>\n`);
  return c;
}

const asNobody = (cmd: string, args: string[]): Cmd => sh('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', cmd, ...args]);
const asChronos = (cmd: string, args: string[]): Cmd => sh('setpriv', [`--reuid=${chronosUid}`, `--regid=${chronosUid}`, '--clear-groups', '--', cmd, ...args]);
const ctlArgs = (address: string, ...a: string[]) => [bundle, 'ctl', '--address', address, ...a];
const sendArgs = (address: string, ...a: string[]) => [`--bus=${address}`, '--print-reply', `--dest=${BUS_NAME}`, ...a];

/** dbus-send's error line: "Error NAME: TEXT". */
function dbusError(r: Cmd): { name: string; text: string } | null {
  const m = /^Error ([\w.]+): (.*)$/m.exec(r.stderr);
  return m ? { name: m[1] as string, text: m[2] as string } : null;
}

function expectAllowed(what: string, r: Cmd): void {
  attempts++;
  outcomes[what] = r.code === 0 ? 'allowed' : `refused: ${r.stderr.trim().split('\n')[0]}`;
  expect(r.code, `${what}: ${r.stderr}`).toBe(0);
}

function expectDenied(what: string, r: Cmd, match?: RegExp): void {
  attempts++;
  const line = r.stderr.trim().split('\n')[0] ?? '';
  outcomes[what] = r.code === 0 ? 'ALLOWED' : `denied: ${line.slice(0, 160)}`;
  if (r.code !== 0) denied++;
  expect(r.code, `${what} must be refused`).not.toBe(0);
  if (match) expect(r.stderr).toMatch(match);
}

rec.recordFailures();
afterAll(async () => {
  await killDaemon(daemon);
  await killDaemon(other);
  await sysBus?.stop();
  await openBus?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  if (createdUser) sh('userdel', ['chronos']);
  if (!IS_ROOT) rec.notes.push(`skipped: ${ROOT_SKIP_REASON}`);
  rec.add('calls', attempts);
  rec.figures['access attempts / refused'] = `${attempts} / ${denied}`;
  for (const [k, v] of Object.entries(outcomes)) rec.figures[k] = v;
  rec.figures['system user chronos'] = createdUser ? 'created for the run (useradd --system) and removed after' : 'already present';
  rec.finish();
});

const haveSystemConf = fs.existsSync(SYSTEM_CONF);
const skip = !IS_ROOT || !haveSystemConf;
const why = !IS_ROOT ? ROOT_SKIP_REASON : `${SYSTEM_CONF} is missing (package dbus-daemon / dbus-system-bus-common)`;

describe.skipIf(skip)(`access control on a deny-by-default system bus${skip ? ` — skipped: ${why}` : ''}`, () => {
  beforeAll(async () => {
    if (sh('id', ['-u', 'chronos']).code !== 0) {
      const r = sh('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'chronos']);
      if (r.code !== 0) throw new Error(`useradd chronos: ${r.stderr}`);
      createdUser = true;
    }
    chronosUid = Number(sh('id', ['-u', 'chronos']).stdout.trim());
    dir = openTempDir('chronos-access-');
    bundle = privateBundle(dir);
    const state = path.join(dir, 'state');
    fs.mkdirSync(state, { mode: 0o700 });
    fs.chownSync(state, chronosUid, chronosUid);
    tickFile = path.join(state, 'tick.dat');
    const conf = systemLikeConfig(fs.readFileSync(SYSTEM_CONF, 'utf8'), path.join(dir, 'system_bus_socket'));
    // Still Debian's deny-by-default policy, and ours is in.
    expect(conf).toMatch(/<type>system<\/type>/);
    expect(conf).toMatch(/<deny own="\*"\/>/);
    expect(conf).toMatch(/<deny send_type="method_call"\/>/);
    expect(conf).toContain(`<include>${POLICY}</include>`);
    sysBus = await startBusWith(dir, () => conf, 'system_bus_socket');
    daemon = spawnDaemon({ bundle, address: sysBus.address, tickFile, uid: chronosUid, gid: chronosUid });
    expect(await daemon.serving, daemon.stderr()).toBe(true);
  });

  it('the daemon runs as chronos and owns the name; its tick file is private to it', () => {
    const status = fs.readFileSync(`/proc/${daemon!.pid}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(chronosUid));
    const owner = sh('dbus-send', [`--bus=${sysBus!.address}`, '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.GetConnectionUnixUser', `string:${BUS_NAME}`]);
    expect(owner.stdout).toMatch(new RegExp(`uint32 ${chronosUid}\\b`));
    const st = fs.statSync(tickFile);
    expect([st.uid, st.mode & 0o777]).toEqual([chronosUid, 0o600]);
    const ds = fs.statSync(path.dirname(tickFile));
    expect([ds.uid, ds.mode & 0o777]).toEqual([chronosUid, 0o700]);
  });

  it('nobody may call what the policy allows: GetTick, NextTick, GetPhiTimestamp, LogEvent, Introspect, Peer, Properties Get/GetAll', () => {
    const a = sysBus!.address;
    const before = readTickStrict(tickFile);
    const tick = asNobody(NODE, ctlArgs(a, 'tick'));
    expectAllowed('nobody: GetTick (chronos-ctl tick)', tick);
    expect(tick.stdout.trim()).toBe(String(before));
    const next = asNobody(NODE, ctlArgs(a, 'next'));
    expectAllowed('nobody: NextTick (chronos-ctl next)', next);
    expect(BigInt(next.stdout.trim())).toBe(before + 1n);
    const stamp = asNobody(NODE, ctlArgs(a, 'stamp', 'NOBODY'));
    expectAllowed('nobody: GetPhiTimestamp', stamp);
    expect(stamp.stdout).toMatch(/::NOBODY::TICK-\d{10}/);
    const log = asNobody(NODE, ctlArgs(a, 'log', 'NOBODY', 'probe', 'ok', 'from nobody'));
    expectAllowed('nobody: LogEvent', log);
    expect(JSON.parse(log.stdout).details).toBe('from nobody');
    expectAllowed('nobody: Properties.GetAll (chronos-ctl ping)', asNobody(NODE, ctlArgs(a, 'ping')));
    const get = asNobody('dbus-send', sendArgs(a, OBJECT_PATH, `${PROPERTIES_INTERFACE}.Get`, `string:${INTERFACE}`, 'string:Tick'));
    expectAllowed('nobody: Properties.Get Tick', get);
    expect(get.stdout).toMatch(new RegExp(`uint64 ${before + 3n}`));
    const intro = asNobody('dbus-send', sendArgs(a, OBJECT_PATH, 'org.freedesktop.DBus.Introspectable.Introspect'));
    expectAllowed('nobody: Introspect', intro);
    expect(intro.stdout).toContain(`<interface name="${INTERFACE}">`);
    expectAllowed('nobody: Peer.Ping', asNobody('dbus-send', sendArgs(a, OBJECT_PATH, 'org.freedesktop.DBus.Peer.Ping')));
    expectAllowed('nobody: Peer.GetMachineId', asNobody('dbus-send', sendArgs(a, OBJECT_PATH, 'org.freedesktop.DBus.Peer.GetMachineId')));
    expect(readTickStrict(tickFile)).toBe(before + 3n);
  });

  it('nobody cannot Shutdown: the bus refuses by policy (AccessDenied), the daemon keeps serving', () => {
    const a = sysBus!.address;
    const r = asNobody('dbus-send', sendArgs(a, OBJECT_PATH, `${INTERFACE}.Shutdown`));
    expectDenied('nobody: Shutdown (dbus-send)', r);
    const e = dbusError(r);
    expect(e?.name).toBe(ERRORS.AccessDenied);
    // Refused by the bus's policy, before the daemon ever saw it.
    expect(e?.text).toMatch(/^Rejected send message/);
    const viaCtl = asNobody(NODE, ctlArgs(a, 'shutdown'));
    expectDenied('nobody: Shutdown (chronos-ctl shutdown, exit 4)', viaCtl);
    expect(viaCtl.code).toBe(4);
    // Nor anything else the policy does not list.
    const set = asNobody('dbus-send', sendArgs(a, OBJECT_PATH, `${PROPERTIES_INTERFACE}.Set`, `string:${INTERFACE}`, 'string:Tick', 'variant:uint64:1'));
    expectDenied('nobody: Properties.Set', set);
    expect(dbusError(set)?.name).toBe(ERRORS.AccessDenied);
    const unknown = asNobody('dbus-send', sendArgs(a, OBJECT_PATH, `${INTERFACE}.Reset`));
    expectDenied('nobody: an unlisted method', unknown);
    expect(dbusError(unknown)?.text).toMatch(/^Rejected send message/);
    expect(daemon!.alive()).toBe(true);
    expect(asNobody(NODE, ctlArgs(a, 'tick')).code).toBe(0);
  });

  it('nobody cannot own the name, neither while the daemon holds it nor when it is free', async () => {
    const a = sysBus!.address;
    const req = asNobody('dbus-send', [`--bus=${a}`, '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.RequestName', `string:${BUS_NAME}`, 'uint32:4']);
    expectDenied('nobody: RequestName while owned', req);
    expect(dbusError(req)?.name).toBe(ERRORS.AccessDenied);
    const nobodyDir = openTempDir('chronos-nobody-');
    fs.chownSync(nobodyDir, NOBODY, NOBODY);
    try {
      other = spawnDaemon({ bundle, address: a, tickFile: path.join(nobodyDir, 'tick.dat'), uid: NOBODY, gid: NOBODY });
      const code = await other.exited;
      attempts++;
      outcomes['nobody: a second daemon while the name is owned'] = `exit ${code}: ${other.stderr().trim()}`;
      expect(code).toBe(4);
      expect(other.stderr()).toMatch(/cannot own org\.jesternet\.Chronos/);
      denied++;

      // Root may stop it (policy and the daemon's own check both allow root).
      const stop = sh(NODE, ctlArgs(a, 'shutdown'));
      expectAllowed('root: Shutdown', stop);
      expect(await daemon!.exited).toBe(0);
      const durable = readTickStrict(tickFile);

      // The name is free now, and still nobody may take it.
      const req2 = asNobody('dbus-send', [`--bus=${a}`, '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.RequestName', `string:${BUS_NAME}`, 'uint32:4']);
      expectDenied('nobody: RequestName while free', req2);
      expect(dbusError(req2)?.name).toBe(ERRORS.AccessDenied);
      other = spawnDaemon({ bundle, address: a, tickFile: path.join(nobodyDir, 'tick.dat'), uid: NOBODY, gid: NOBODY });
      const code2 = await other.exited;
      attempts++;
      outcomes['nobody: a daemon while the name is free'] = `exit ${code2}: ${other.stderr().trim()}`;
      expect(code2).toBe(4);
      denied++;

      // chronos may: the daemon comes back and continues.
      daemon = spawnDaemon({ bundle, address: a, tickFile, uid: chronosUid, gid: chronosUid });
      expect(await daemon.serving, daemon.stderr()).toBe(true);
      expect(daemon.startTick()).toBe(durable);
    } finally {
      fs.rmSync(nobodyDir, { recursive: true, force: true });
    }
  });

  it('nobody cannot read or write the tick file, nor list its directory', () => {
    const content = fs.readFileSync(tickFile, 'latin1');
    expectDenied('nobody: read the tick file', asNobody('cat', [tickFile]), /Permission denied/);
    expectDenied('nobody: write the tick file', asNobody('sh', ['-c', `echo 999999 > '${tickFile}'`]), /Permission denied/);
    expectDenied('nobody: list the state directory', asNobody('ls', [path.dirname(tickFile)]), /Permission denied/);
    expectDenied('nobody: create a file next to it', asNobody('touch', [`${tickFile}.evil`]), /Permission denied/);
    expect(fs.readFileSync(tickFile, 'latin1')).toBe(content);
    expect(fs.readdirSync(path.dirname(tickFile))).toEqual(['tick.dat']);
  });
});

describe.skipIf(!IS_ROOT)(`the daemon's own Shutdown check on a permissive bus${IS_ROOT ? '' : ` — skipped: ${ROOT_SKIP_REASON}`}`, () => {
  beforeAll(async () => {
    dir ??= openTempDir('chronos-access-');
    bundle ||= privateBundle(dir);
    openBus = await startBusWith(dir, (s) => permissiveBusConfig(s), 'open_bus');
  });

  it('a root daemon refuses Shutdown to nobody with AccessDenied and its own message', async () => {
    const d = spawnDaemon({ bundle, address: openBus!.address, tickFile: path.join(dir, 'open-root', 'tick.dat') });
    try {
      expect(await d.serving, d.stderr()).toBe(true);
      const r = asNobody('dbus-send', sendArgs(openBus!.address, OBJECT_PATH, `${INTERFACE}.Shutdown`));
      expectDenied('permissive bus, root daemon: Shutdown from nobody', r);
      expect(dbusError(r)).toEqual({ name: ERRORS.AccessDenied, text: `Shutdown is for root or uid 0; caller is uid ${NOBODY}` });
      expect(d.alive()).toBe(true);
      expectAllowed('permissive bus, root daemon: NextTick from nobody', asNobody(NODE, ctlArgs(openBus!.address, 'next')));
    } finally {
      await killDaemon(d, 'SIGTERM');
    }
  });

  it('a daemon running as another user obeys its own uid and root, and refuses everyone else', async () => {
    if (chronosUid < 0) {
      if (sh('id', ['-u', 'chronos']).code !== 0) {
        expect(sh('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'chronos']).code).toBe(0);
        createdUser = true;
      }
      chronosUid = Number(sh('id', ['-u', 'chronos']).stdout.trim());
    }
    const state = path.join(dir, 'open-chronos');
    fs.mkdirSync(state, { mode: 0o700 });
    fs.chownSync(state, chronosUid, chronosUid);
    let d = spawnDaemon({ bundle, address: openBus!.address, tickFile: path.join(state, 'tick.dat'), uid: chronosUid, gid: chronosUid });
    try {
      expect(await d.serving, d.stderr()).toBe(true);
      const r = asNobody('dbus-send', sendArgs(openBus!.address, OBJECT_PATH, `${INTERFACE}.Shutdown`));
      expectDenied('permissive bus, chronos daemon: Shutdown from nobody', r);
      expect(dbusError(r)).toEqual({ name: ERRORS.AccessDenied, text: `Shutdown is for root or uid ${chronosUid}; caller is uid ${NOBODY}` });
      expect(d.alive()).toBe(true);
      // Its own uid may.
      expectAllowed('permissive bus, chronos daemon: Shutdown from chronos', asChronos(NODE, ctlArgs(openBus!.address, 'shutdown')));
      expect(await d.exited).toBe(0);
      // And root may.
      d = spawnDaemon({ bundle, address: openBus!.address, tickFile: path.join(state, 'tick.dat'), uid: chronosUid, gid: chronosUid });
      expect(await d.serving, d.stderr()).toBe(true);
      expectAllowed('permissive bus, chronos daemon: Shutdown from root', sh(NODE, ctlArgs(openBus!.address, 'shutdown')));
      expect(await d.exited).toBe(0);
    } finally {
      await killDaemon(d, 'SIGTERM');
    }
  });
});
