// The system test suite: install the .deb into a booted Debian (systemd-nspawn) and check
// everything issue 3 lists under "Tested under a real systemd". One container per release
// (per test file), booted once in beforeAll; the tests run in order against it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { Container, DEB_VERSION, IS_ROOT, PKG_VERSION, UPGRADE_VERSION, ensureDeb, ensureUpgradeDeb, waitFor, type Release } from './nspawn.js';

const USER = 'tester';
const UNIT = 'chronosd.service';
const BUS_NAME = 'org.jesternet.Chronos';
const OBJ = '/org/jesternet/Chronos';

/** The last unsigned integer in a command's output. */
function lastInt(out: string): bigint {
  const m = out.match(/\d+/g);
  if (!m) throw new Error(`no number in ${JSON.stringify(out)}`);
  return BigInt(m[m.length - 1]!);
}

export function defineSystemSuite(release: Release): void {
  if (!IS_ROOT) {
    process.stderr.write(`[system] skipping the ${release} system tests: they need root (systemd-nspawn, debootstrap)\n`);
  }

  describe.skipIf(!IS_ROOT).sequential(`chronos .deb on Debian ${release} under systemd (nspawn)`, { timeout: 120_000 }, () => {
    let c: Container | undefined;
    let deb = '';
    let upgradeDeb = '';
    /** The highest tick handed out so far: every later tick must be greater. */
    let last = -1n;

    const ct = (): Container => {
      if (!c) throw new Error('container did not boot');
      return c;
    };
    const ctl = (args: string[], user?: string) => ct().exec(['chronos-ctl', ...args], user ? { user } : {});
    const active = () => ct().exec(['systemctl', 'is-active', UNIT]).stdout.trim();
    const mainPid = () => Number(ct().exec(['systemctl', 'show', '-p', 'MainPID', '--value', UNIT]).stdout.trim());
    const tick = (user = USER): bigint => {
      const r = ctl(['tick'], user);
      expect(r.status, r.stderr).toBe(0);
      return lastInt(r.stdout);
    };
    const next = (user = USER): bigint => {
      const r = ctl(['next'], user);
      expect(r.status, r.stderr).toBe(0);
      const t = lastInt(r.stdout);
      expect(t).toBeGreaterThan(last);
      last = t;
      return t;
    };

    beforeAll(async () => {
      deb = ensureDeb();
      upgradeDeb = ensureUpgradeDeb();
      c = await Container.boot(release, [deb, upgradeDeb]);
      c.ok(['useradd', '--create-home', '--shell', '/bin/sh', USER]);
    }, 900_000);

    afterAll(async () => {
      await c?.destroy();
    }, 120_000);

    it('the rootfs has no Node.js', () => {
      expect(ct().sh('command -v node nodejs').stdout.trim()).toBe('');
    });

    it('installs with apt-get and leaves the unit enabled and active', () => {
      const r = ct().exec(['apt-get', 'install', '-y', '--no-install-recommends', `/root/${path.basename(deb)}`]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(ct().ok(['dpkg-query', '-W', '-f', '${Version} ${db:Status-Status}', 'chronos']).trim()).toBe(`${DEB_VERSION} installed`);
      expect(ct().exec(['systemctl', 'is-enabled', UNIT]).stdout.trim()).toBe('enabled');
      expect(active()).toBe('active');
    });

    it('installs every file in its place', () => {
      const files = [
        '/usr/local/bin/chronosd-dbus',
        '/lib/systemd/system/chronosd.service',
        '/usr/share/dbus-1/system.d/org.jesternet.Chronos.conf',
        '/usr/share/dbus-1/system-services/org.jesternet.Chronos.service',
        '/usr/lib/sysusers.d/chronos.conf',
        '/usr/share/man/man1/chronos-ctl.1.gz',
        '/usr/share/man/man8/chronosd-dbus.8.gz',
        '/usr/share/bash-completion/completions/chronos-ctl',
        '/usr/share/doc/chronos/copyright',
        '/usr/share/doc/chronos/changelog.Debian.gz',
      ];
      for (const f of files) expect(ct().exec(['test', '-f', f]).status, f).toBe(0);
      expect(ct().ok(['readlink', '/usr/local/bin/chronos-ctl']).trim()).toBe('chronosd-dbus');
    });

    it('runs as the system user chronos and logs its version at startup', () => {
      const uid = ct().ok(['id', '-u', 'chronos']).trim();
      const pid = mainPid();
      expect(pid).toBeGreaterThan(0);
      const status = ct().ok(['cat', `/proc/${pid}/status`]);
      expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'));
      const journal = ct().ok(['journalctl', '-b', '-u', UNIT, '--no-pager', '-o', 'cat']);
      expect(journal).toContain(PKG_VERSION);
      expect(journal).toContain('v24.');
    });

    it('an unprivileged user can ping, tick, next, stamp and log', () => {
      const ping = ctl(['ping'], USER);
      expect(ping.status, ping.stderr).toBe(0);
      const t0 = tick();
      const t1 = next();
      expect(t1).toBeGreaterThan(t0);
      const stamp = ctl(['stamp', 'AGENT-SYS'], USER);
      expect(stamp.status, stamp.stderr).toBe(0);
      expect(stamp.stdout).toContain('AGENT-SYS');
      last = lastInt(stamp.stdout);
      const logged = ctl(['log', 'AGENT-SYS', 'deploy', 'ok', 'from the system test'], USER);
      expect(logged.status, logged.stderr).toBe(0);
      expect(logged.stdout).toContain('AGENT-SYS');
      expect(tick()).toBeGreaterThan(t1);
      last = tick();
      expect(ctl(['version'], USER).stdout).toContain(PKG_VERSION);
    });

    it('the tick file is in /var/lib/chronos, directory 0700 and file 0600, owned by chronos', () => {
      const real = ct().ok(['readlink', '-f', '/var/lib/chronos']).trim();
      expect(real).toBe('/var/lib/private/chronos'); // DynamicUser=yes keeps it under private/
      expect(ct().ok(['stat', '-c', '%a', real]).trim()).toBe('700');
      expect(ct().ok(['stat', '-c', '%a', `${real}/tick.dat`]).trim()).toBe('600');
      // Ownership as the service sees it, from its mount namespace: systemd >= 256 (trixie)
      // stores a DynamicUser's state as nobody on disk and maps it to the service's user
      // with an idmapped mount; systemd 252 (bookworm) chowns it to chronos directly.
      const pid = String(mainPid());
      expect(ct().ok(['nsenter', '-t', pid, '-m', 'stat', '-c', '%a %U', real]).trim()).toBe('700 chronos');
      expect(ct().ok(['nsenter', '-t', pid, '-m', 'stat', '-c', '%a %U', `${real}/tick.dat`]).trim()).toBe('600 chronos');
      const onDisk = ct().ok(['stat', '-c', '%U', `${real}/tick.dat`]).trim();
      expect(['chronos', 'nobody']).toContain(onDisk);
      // and the unprivileged user cannot even look inside
      expect(ct().exec(['ls', '/var/lib/chronos/'], { user: USER }).status).not.toBe(0);
    });

    it("the guide's verification step: dbus-send Introspect as an unprivileged user", () => {
      const r = ct().exec(
        ['dbus-send', '--system', '--print-reply', `--dest=${BUS_NAME}`, OBJ, 'org.freedesktop.DBus.Introspectable.Introspect'],
        { user: USER },
      );
      expect(r.status, r.stderr).toBe(0);
      for (const s of ['org.jesternet.Chronos', 'GetTick', 'NextTick', 'GetPhiTimestamp', 'LogEvent', 'Shutdown', 'EventLogged']) {
        expect(r.stdout).toContain(s);
      }
      const prop = ct().exec(
        ['dbus-send', '--system', '--print-reply', `--dest=${BUS_NAME}`, OBJ, 'org.freedesktop.DBus.Properties.Get', `string:${BUS_NAME}`, 'string:Version'],
        { user: USER },
      );
      expect(prop.status, prop.stderr).toBe(0);
      expect(prop.stdout).toContain(PKG_VERSION);
      const ping = ct().exec(['dbus-send', '--system', '--print-reply', `--dest=${BUS_NAME}`, OBJ, 'org.freedesktop.DBus.Peer.Ping'], { user: USER });
      expect(ping.status, ping.stderr).toBe(0);
    });

    it('an unprivileged user receives EventLogged (chronos-ctl watch)', () => {
      const r = ct().sh(
        // Log until the watcher has seen one (it may take a moment to subscribe), 30 s at most.
        'chronos-ctl watch >/tmp/watch.out 2>&1 & w=$!; i=0; ' +
          'while [ $i -lt 60 ] && ! grep -q WATCH-AGENT /tmp/watch.out; do ' +
          'chronos-ctl log WATCH-AGENT observe ok signal >/dev/null; sleep 0.5; i=$((i+1)); done; ' +
          'kill $w; cat /tmp/watch.out',
        { user: USER },
      );
      expect(r.stdout).toContain('WATCH-AGENT');
      last = tick();
    });

    it("an unprivileged user's shutdown exits 4 and the daemon keeps running", () => {
      const pid = mainPid();
      const r = ctl(['shutdown'], USER);
      expect(r.status, r.stdout + r.stderr).toBe(4);
      expect(active()).toBe('active');
      expect(mainPid()).toBe(pid);
      expect(tick()).toBe(last);
    });

    it('an unprivileged user cannot own the name (policy), unlike root', () => {
      const request = ['dbus-send', '--system', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.RequestName', `string:${BUS_NAME}`, 'uint32:4'];
      const user = ct().exec(request, { user: USER });
      expect(user.status).not.toBe(0);
      expect(user.stderr).toMatch(/AccessDenied|not allowed to own/);
      // Root passes the policy and is only told the name is taken (3 = EXISTS).
      const root = ct().exec(request);
      expect(root.status, root.stderr).toBe(0);
      expect(root.stdout).toMatch(/uint32 3/);
    });

    it("root's shutdown stops the daemon for good; the next call activates it again and continues the tick", async () => {
      const r = ctl(['shutdown']);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(await waitFor(() => active() === 'inactive', 30_000)).toBe(true);
      // Restart=on-failure: a clean shutdown is not restarted behind our back.
      await new Promise((res) => setTimeout(res, 2_500));
      expect(active()).toBe('inactive');
      expect(ct().ok(['systemctl', 'show', '-p', 'Result', '--value', UNIT]).trim()).toBe('success');
      // With the name free, the policy still refuses it to an unprivileged user.
      const own = ct().exec(
        ['dbus-send', '--system', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.RequestName', `string:${BUS_NAME}`, 'uint32:4'],
        { user: USER },
      );
      expect(own.stderr).toMatch(/AccessDenied|not allowed to own/);
      // Bus activation: an unprivileged call starts it through systemd, and the
      // tick goes on from where it was (next() checks it exceeds every earlier one).
      const before = last;
      expect(next()).toBeGreaterThan(before);
      expect(active()).toBe('active');
    });

    it('systemctl restart keeps the tick', () => {
      const before = tick();
      const pid = mainPid();
      ct().ok(['systemctl', 'restart', UNIT]);
      expect(active()).toBe('active');
      expect(mainPid()).not.toBe(pid);
      expect(tick()).toBe(before);
      next();
    });

    it('kill -9 of the main process is followed by a restart by systemd, and the tick survives', async () => {
      const before = tick();
      const pid = mainPid();
      ct().ok(['sh', '-c', `kill -9 ${pid}`]); // no procps in minbase: the shell's kill
      const restarted = await waitFor(() => active() === 'active' && mainPid() > 0 && mainPid() !== pid, 60_000, 200);
      expect(restarted).toBe(true);
      expect(Number(ct().ok(['systemctl', 'show', '-p', 'NRestarts', '--value', UNIT]).trim())).toBeGreaterThanOrEqual(1);
      expect(tick()).toBeGreaterThanOrEqual(before);
      next();
    });

    it('systemd-analyze security rates the running unit 1.0 or lower', () => {
      const r = ct().exec(['systemd-analyze', 'security', '--no-pager', UNIT]);
      const m = /Overall exposure level for chronosd\.service: ([0-9.]+)/.exec(r.stdout + r.stderr);
      expect(m, r.stdout + r.stderr).not.toBeNull();
      expect(Number(m![1])).toBeLessThanOrEqual(1.0);
    });

    it('a package upgrade restarts the daemon and keeps the tick', () => {
      const before = tick();
      const pid = mainPid();
      const r = ct().exec(['apt-get', 'install', '-y', '--no-install-recommends', `/root/${path.basename(upgradeDeb)}`]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(ct().ok(['dpkg-query', '-W', '-f', '${Version}', 'chronos']).trim()).toBe(UPGRADE_VERSION);
      expect(active()).toBe('active');
      expect(mainPid()).not.toBe(pid);
      expect(tick()).toBe(before);
      next();
    });

    it('apt-get purge leaves no unit, policy, activation file, enablement or state behind', () => {
      const r = ct().exec(['apt-get', 'purge', '-y', 'chronos']);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(ct().exec(['dpkg-query', '-W', '-f', '${db:Status-Status}', 'chronos']).stdout.trim()).not.toBe('installed');
      for (const p of [
        '/lib/systemd/system/chronosd.service',
        '/usr/share/dbus-1/system.d/org.jesternet.Chronos.conf',
        '/usr/share/dbus-1/system-services/org.jesternet.Chronos.service',
        '/usr/lib/sysusers.d/chronos.conf',
        '/usr/local/bin/chronosd-dbus',
        '/usr/local/bin/chronos-ctl',
        '/etc/systemd/system/multi-user.target.wants/chronosd.service',
        '/etc/systemd/system/chronosd.service',
        '/var/lib/chronos',
        '/var/lib/private/chronos',
        '/var/lib/systemd/deb-systemd-helper-enabled/chronosd.service.dsh-also',
      ]) {
        expect(ct().exec(['test', '-e', p]).status, `${p} still exists`).not.toBe(0);
        expect(ct().exec(['test', '-L', p]).status, `${p} still exists (symlink)`).not.toBe(0);
      }
      expect(active()).not.toBe('active');
      expect(ct().exec(['systemctl', 'cat', UNIT]).status).not.toBe(0);
      const names = ct().ok(['dbus-send', '--system', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.ListActivatableNames']);
      expect(names).not.toContain(BUS_NAME);
      const reply = ct().exec(['dbus-send', '--system', '--print-reply', `--dest=${BUS_NAME}`, OBJ, 'org.freedesktop.DBus.Peer.Ping']);
      expect(reply.status).not.toBe(0);
    });
  });
}
