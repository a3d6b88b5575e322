// The standalone binary on a Debian root filesystem without any Node.js: unpacked from the
// .deb (no maintainer scripts), run in a plain systemd-nspawn container (no boot) under its
// three dispatch names, and used end to end on a private bus inside that rootfs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { IS_ROOT, PKG_VERSION, ensureDeb, unpackRootfs } from './nspawn.js';

if (!IS_ROOT) process.stderr.write('[system] skipping the no-Node rootfs test: it needs root (systemd-nspawn)\n');

describe.skipIf(!IS_ROOT)('the chronos binary on a rootfs with no Node.js', { timeout: 120_000 }, () => {
  let dir = '';
  let root = '';

  /** Run a shell line inside the rootfs (a non-booted nspawn container: /proc, /dev, /tmp set up). */
  function inside(line: string): { status: number; stdout: string; stderr: string } {
    mkdirSync('/run/systemd/nspawn', { recursive: true });
    const r = spawnSync(
      'unshare',
      [
        '-m', '--propagation', 'private', 'sh', '-c',
        'mount -t tmpfs tmpfs /run/systemd/nspawn && exec systemd-nspawn -q -D "$1" --register=no --keep-unit --console=pipe -E NODE_OPTIONS= /bin/sh -c "$2"',
        'nspawn', root, line,
      ],
      { encoding: 'utf8', input: '' },
    );
    return { status: r.status ?? 137, stdout: r.stdout, stderr: r.stderr };
  }

  beforeAll(() => {
    const deb = ensureDeb();
    ({ dir, root } = unpackRootfs('bookworm'));
    // Unpack aside and copy only /usr/local/bin: a raw `dpkg-deb -x` into the rootfs would
    // replace merged-/usr's /lib symlink with the package's lib/ directory.
    const x = spawnSync('dpkg-deb', ['-x', deb, path.join(dir, 'deb')], { encoding: 'utf8' });
    if (x.status !== 0) throw new Error(`dpkg-deb -x: ${x.stderr}`);
    const bin = path.join(dir, 'deb', 'usr', 'local', 'bin');
    const cp = spawnSync('cp', ['-a', path.join(bin, 'chronosd-dbus'), path.join(bin, 'chronos-ctl'), path.join(root, 'usr', 'local', 'bin')], { encoding: 'utf8' });
    if (cp.status !== 0) throw new Error(`cp: ${cp.stderr}`);
    // The neutral name: any name other than chronosd-dbus / chronos-ctl.
    symlinkSync('chronosd-dbus', path.join(root, 'usr/local/bin/chronos'));
  }, 900_000);

  afterAll(() => {
    if (dir && !process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  });

  it('has no node at all', () => {
    const r = inside('command -v node nodejs; ls /usr/bin/node* /usr/lib/node_modules 2>/dev/null; true');
    expect(r.stdout.trim()).toBe('');
  });

  it('runs as chronos-ctl (the symlink)', () => {
    const r = inside('chronos-ctl version');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(PKG_VERSION);
    expect(r.stdout).toMatch(/v24\.\d+\.\d+/);
  });

  it('runs as chronosd-dbus (the binary itself)', () => {
    const r = inside('/usr/local/bin/chronosd-dbus --version');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(PKG_VERSION);
    expect(r.stdout).toMatch(/v24\.\d+\.\d+/);
  });

  it('runs under any other name as `chronos daemon ...` / `chronos ctl ...`', () => {
    const ctl = inside('chronos ctl version');
    expect(ctl.status, ctl.stderr).toBe(0);
    expect(ctl.stdout).toContain(PKG_VERSION);
    const daemon = inside('chronos daemon --version');
    expect(daemon.status, daemon.stderr).toBe(0);
    expect(daemon.stdout).toContain(PKG_VERSION);
  });

  it('chronos-ctl exits 3 when no bus is reachable', () => {
    const r = inside('chronos-ctl --address unix:path=/tmp/no-such-bus --timeout 2000 tick');
    expect(r.status, r.stdout + r.stderr).toBe(3);
  });

  it('serves and answers on a private bus inside the rootfs, under all three names', () => {
    const conf = path.join(root, 'root', 'bus.conf');
    writeFileSync(
      conf,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=/tmp/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>\n`,
    );
    const script = path.join(root, 'root', 'e2e.sh');
    writeFileSync(
      script,
      `set -e
dbus-daemon --config-file=/root/bus.conf --fork --print-pid >/tmp/bus.pid
A=unix:path=/tmp/bus
chronosd-dbus --session --address $A --tick-file /tmp/tick.dat >/tmp/d1.log 2>&1 &
i=0; until chronos-ctl --session --address $A ping >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || { cat /tmp/d1.log; exit 1; }; sleep 0.1; done
echo "next=$(chronos-ctl --session --address $A next)"
echo "next=$(chronos ctl --session --address $A next)"
chronos-ctl --session --address $A shutdown >/dev/null || true
wait
chronos daemon --session --address $A --tick-file /tmp/tick.dat >/tmp/d2.log 2>&1 &
i=0; until chronos-ctl --session --address $A ping >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || { cat /tmp/d2.log; exit 1; }; sleep 0.1; done
echo "tick=$(chronos-ctl --session --address $A tick)"
chronos-ctl --session --address $A shutdown >/dev/null || true
wait
kill "$(cat /tmp/bus.pid)"
`,
    );
    chmodSync(script, 0o755);
    const r = inside('sh /root/e2e.sh');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const nums = [...r.stdout.matchAll(/(next|tick)=.*?(\d+)\s*$/gm)].map((m) => Number(m[2]));
    expect(nums).toHaveLength(3);
    expect(nums[1]).toBeGreaterThan(nums[0]!);
    // The tick survived the daemon's restart (the second daemon ran under the neutral name).
    expect(nums[2]).toBe(nums[1]);
  });

  it('installs and purges without a running systemd (a chroot or image build)', () => {
    const deb = ensureDeb();
    const fresh = unpackRootfs('bookworm');
    try {
      const name = path.basename(deb);
      spawnSync('cp', [deb, path.join(fresh.root, 'root', name)]);
      const saved = root;
      root = fresh.root;
      try {
        const install = inside(`apt-get install -y --no-install-recommends /root/${name}`);
        expect(install.status, install.stdout + install.stderr).toBe(0);
        const after = inside(
          'id -u chronos && test -L /etc/systemd/system/multi-user.target.wants/chronosd.service && echo enabled; ' +
            'chronos-ctl version',
        );
        expect(after.status, after.stdout + after.stderr).toBe(0);
        expect(after.stdout).toContain('enabled');
        expect(after.stdout).toContain(PKG_VERSION);
        const purge = inside('apt-get purge -y chronos && ! test -e /lib/systemd/system/chronosd.service && ! test -L /etc/systemd/system/multi-user.target.wants/chronosd.service && echo clean');
        expect(purge.status, purge.stdout + purge.stderr).toBe(0);
        expect(purge.stdout).toContain('clean');
      } finally {
        root = saved;
      }
    } finally {
      rmSync(fresh.dir, { recursive: true, force: true });
    }
  });
});
