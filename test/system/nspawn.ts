// Helpers for the system tests: a cached debootstrap rootfs, the .deb under test,
// and a Debian container booted with systemd-nspawn (see ../../../shared/NOTES.md section 5).
//
// Everything here needs root. Containers run under `unshare -m --propagation private`
// with a tmpfs on /run/systemd/nspawn, so nothing leaks onto the host's mounts, and
// each one boots from its own throwaway copy of the cached rootfs.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, copyFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CACHE = path.join(ROOT, '.cache');
export const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
export const PKG_VERSION: string = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
export const DEB_VERSION = `${PKG_VERSION}-1`;
/** The version the upgrade test installs over DEB_VERSION. */
export const UPGRADE_VERSION = `${PKG_VERSION}-99`;

export type Release = 'bookworm' | 'trixie';

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

function log(msg: string): void {
  process.stderr.write(`[system] ${msg}\n`);
}

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): RunResult {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? process.env,
    input: opts.input ?? '',
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? 128 + 9, stdout: r.stdout, stderr: r.stderr };
}

function must(cmd: string, args: string[], opts?: Parameters<typeof sh>[2]): RunResult {
  const r = sh(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** .cache/rootfs/<release>.tar, built by scripts/rootfs.sh when missing. */
export function ensureRootfs(release: Release): string {
  const tar = path.join(process.env.CHRONOS_ROOTFS_CACHE || path.join(CACHE, 'rootfs'), `${release}.tar`);
  if (!existsSync(tar)) {
    log(`building the ${release} rootfs (scripts/rootfs.sh, about a minute)`);
    must('sh', [path.join(ROOT, 'scripts', 'rootfs.sh'), release]);
  }
  return tar;
}

function newest(p: string): number {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(p).map((f) => newest(path.join(p, f))));
}

/**
 * The package under test, dist/chronos_<version>-1_amd64.deb, (re)built with
 * `npm run deb` (scripts/build-deb.mjs) unless it is newer than everything it is made of.
 */
export function ensureDeb(): string {
  const deb = path.join(ROOT, 'dist', `chronos_${DEB_VERSION}_amd64.deb`);
  const inputs = Math.max(
    newest(path.join(ROOT, 'src')),
    newest(path.join(ROOT, 'packaging')),
    newest(path.join(ROOT, 'build.mjs')),
    newest(path.join(ROOT, 'scripts', 'build-deb.mjs')),
    newest(path.join(ROOT, 'package.json')),
    newest(path.join(ROOT, 'dist', 'chronos')),
  );
  const bin = path.join(ROOT, 'dist', 'chronos');
  const binStale = !existsSync(bin) || statSync(bin).mtimeMs < Math.max(newest(path.join(ROOT, 'src')), newest(path.join(ROOT, 'package.json')));
  if (!existsSync(deb) || statSync(deb).mtimeMs < inputs || binStale) {
    log('building the .deb (npm run deb)');
    const env = { ...process.env };
    delete env.CHRONOS_DEB_VERSION;
    delete env.CHRONOS_DEB_OUTDIR;
    must(process.execPath, [path.join(ROOT, 'scripts', 'build-deb.mjs')], { env });
  }
  return deb;
}

/** The same package with a higher version, for the upgrade test (uncompressed: quick to build). */
export function ensureUpgradeDeb(): string {
  const outDir = path.join(CACHE, 'system-test', 'upgrade');
  const deb = path.join(outDir, `chronos_${UPGRADE_VERSION}_amd64.deb`);
  const base = ensureDeb();
  if (!existsSync(deb) || statSync(deb).mtimeMs < statSync(base).mtimeMs) {
    log(`building the upgrade .deb ${UPGRADE_VERSION}`);
    must(process.execPath, [path.join(ROOT, 'scripts', 'build-deb.mjs'), '--no-build'], {
      env: { ...process.env, CHRONOS_DEB_VERSION: UPGRADE_VERSION, CHRONOS_DEB_OUTDIR: outDir, CHRONOS_DEB_COMPRESS: 'none' },
    });
  }
  return deb;
}

/** A throwaway copy of the cached rootfs. */
export function unpackRootfs(release: Release): { dir: string; root: string } {
  const tar = ensureRootfs(release);
  const base = path.join(CACHE, 'system-test');
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(path.join(base, `${release}-`));
  const root = path.join(dir, 'root');
  mkdirSync(root);
  must('tar', ['-C', root, '--numeric-owner', '-xf', tar]);
  return { dir, root };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll fn until it returns a truthy value or the deadline passes (then return the last value). */
export async function waitFor<T>(fn: () => T, timeoutMs = 30_000, stepMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = fn();
  while (!v && Date.now() < end) {
    await sleep(stepMs);
    v = fn();
  }
  return v;
}

/** A Debian system booted with systemd-nspawn -b from a fresh rootfs copy. */
export class Container {
  readonly release: Release;
  readonly dir: string;
  readonly root: string;
  private proc: ChildProcess | undefined;
  private exited = false;
  /** Host PID of the container's PID 1 (systemd). */
  pid = 0;
  private output = '';

  private constructor(release: Release) {
    this.release = release;
    const { dir, root } = unpackRootfs(release);
    this.dir = dir;
    this.root = root;
  }

  static async boot(release: Release, files: string[] = []): Promise<Container> {
    const c = new Container(release);
    try {
      for (const f of files) copyFileSync(f, path.join(c.root, 'root', path.basename(f)));
      await c.start();
    } catch (e) {
      await c.destroy();
      throw e;
    }
    return c;
  }

  private async start(): Promise<void> {
    mkdirSync('/run/systemd/nspawn', { recursive: true });
    const script =
      'mount -t tmpfs tmpfs /run/systemd/nspawn && ' +
      'exec systemd-nspawn -q -D "$1" -b --register=no --keep-unit --console=pipe';
    this.proc = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'nspawn', this.root], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.proc.on('exit', () => (this.exited = true));
    const nspawnPid = this.proc.pid!;
    // unshare and sh exec, so nspawnPid becomes systemd-nspawn; its child is the container's systemd.
    this.pid = await waitFor(() => {
      if (this.exited) return 0;
      for (const p of readdirSync('/proc')) {
        if (!/^\d+$/.test(p)) continue;
        try {
          const st = readFileSync(`/proc/${p}/stat`, 'utf8');
          const m = /^\d+ \((.*)\) \S (\d+)/.exec(st);
          if (m && Number(m[2]) === nspawnPid && m[1] === 'systemd') return Number(p);
        } catch {
          /* raced with an exiting process */
        }
      }
      return 0;
    }, 30_000, 50);
    if (!this.pid) throw new Error(`systemd-nspawn did not start a container (${this.release}):\n${this.output}`);
    // Right after PID 1 appears its bus may not be up yet: retry until systemctl answers.
    let state = '';
    let lastErr = '';
    await waitFor(() => {
      const r = this.exec(['systemctl', 'is-system-running', '--wait']);
      state = r.stdout.trim();
      lastErr = r.stderr.trim();
      return state !== '' && state !== 'offline' && state !== 'unknown';
    }, 60_000, 200);
    if (state !== 'running') {
      const failed = this.exec(['systemctl', '--failed', '--no-legend', '--no-pager']).stdout;
      // "degraded" with unrelated failed units is tolerable; anything else is not.
      if (state !== 'degraded') throw new Error(`container ${this.release} is '${state}' (${lastErr})\n${failed}\n${this.output}`);
      log(`${this.release} booted degraded: ${failed.trim()}`);
    }
    log(`${this.release} container up (pid ${this.pid}) in ${this.dir}`);
  }

  /** Run a command inside (as root, or as `user` through runuser). */
  exec(argv: string[], opts: { user?: string; input?: string } = {}): RunResult {
    if (!this.pid || this.exited) throw new Error('container is not running');
    const inner = opts.user ? ['runuser', '-u', opts.user, '--', ...argv] : argv;
    return sh('nsenter', ['-t', String(this.pid), '-a', '--', ...inner], { input: opts.input ?? '' });
  }

  /** Like exec, but throws unless the command exits 0. */
  ok(argv: string[], opts: { user?: string; input?: string } = {}): string {
    const r = this.exec(argv, opts);
    if (r.status !== 0) throw new Error(`${opts.user ? `[${opts.user}] ` : ''}${argv.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** A shell line inside. */
  sh(line: string, opts: { user?: string } = {}): RunResult {
    return this.exec(['sh', '-c', line], opts);
  }

  /** Power off (falling back to SIGKILL) and delete the rootfs copy. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.proc && !this.exited) {
      if (this.pid) sh('nsenter', ['-t', String(this.pid), '-a', '--', 'systemctl', 'poweroff', '--no-block']);
      const done = await waitFor(() => this.exited, 20_000, 100);
      if (!done) {
        log(`${this.release}: poweroff timed out, killing the container`);
        // SIGKILL of the namespace's PID 1 takes every process inside with it.
        try {
          process.kill(this.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        this.proc.kill('SIGKILL');
        await waitFor(() => this.exited, 10_000, 100);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
