// Shared fixtures of the fault suite: the profile (full or CI counts), a seeded PRNG, a
// private copy of the bundle, buses with configurable limits and the daemon under test,
// spawned as any uid, with or without waiting for its startup line.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUNDLE, NODE, ROOT } from '../../helpers/bus.js';

export { NODE, ROOT };

export type Profile = 'full' | 'ci';

/** CHRONOS_FAULTS_PROFILE=full|ci; without it, ci when CI is set (CI=true), else full. */
export const PROFILE: Profile = (() => {
  const p = (process.env.CHRONOS_FAULTS_PROFILE ?? '').toLowerCase();
  if (p === 'full' || p === 'ci') return p;
  if (p) throw new Error(`CHRONOS_FAULTS_PROFILE must be 'full' or 'ci', not '${p}'`);
  return process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0' ? 'ci' : 'full';
})();

/** Picks the count of the active profile. */
export const counts = <T>(full: T, ci: T): T => (PROFILE === 'full' ? full : ci);

export const IS_ROOT = process.getuid?.() === 0;
export const ROOT_SKIP_REASON = 'needs root (mounts, other uids, a root dbus-daemon); run the suite as root';

/** Seed of this run: CHRONOS_FAULTS_SEED or a fresh one, recorded in the results. */
export const SEED = Number(process.env.CHRONOS_FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: small, fast, good enough to pick fault moments and inputs reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A temp dir anyone may traverse (so daemons and callers of other uids reach sockets in it). */
export function openTempDir(prefix = 'chronos-faults-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(d, 0o755);
  return d;
}

/**
 * A private copy of the bundle, world-readable: other suites rebuild dist/ concurrently,
 * and daemons of other uids must read it.
 */
export function privateBundle(dir: string): string {
  const dest = path.join(dir, 'chronos.cjs');
  fs.copyFileSync(BUNDLE, dest);
  fs.chmodSync(dest, 0o644);
  return dest;
}

/** A permissive session-type bus (no policy applies) with a chosen max_message_size. */
export { permissiveConfig as permissiveBusConfig } from '../../helpers/bus.js';

export interface Bus {
  dir: string;
  socket: string;
  address: string;
  proc: ChildProcess;
  stderr(): string;
  exited: Promise<number>;
  stop(): Promise<void>;
}

/** Starts dbus-daemon on DIR/bus with the given config text; resolves once it listens. */
export async function startBusWith(dir: string, config: (socket: string) => string, name = 'bus'): Promise<Bus> {
  const socket = path.join(dir, name);
  const conf = path.join(dir, `${name}.conf`);
  fs.writeFileSync(conf, config(socket));
  const proc = spawn('dbus-daemon', ['--config-file', conf, '--nofork', '--print-address=1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => {
    if (err.length < 65536) err += d.toString();
  });
  const exited = new Promise<number>((resolve) =>
    proc.once('exit', (code, sig) => resolve(code ?? 128 + (os.constants.signals[sig as NodeJS.Signals] ?? 0))),
  );
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) resolve();
    });
    void exited.then((c) => reject(new Error(`dbus-daemon exited ${c}: ${err}`)));
    proc.once('error', reject);
  });
  return {
    dir,
    socket,
    address: `unix:path=${socket}`,
    proc,
    stderr: () => err,
    exited,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

export interface Daemon {
  proc: ChildProcess;
  pid: number;
  stderr(): string;
  /** Lines written to stdout so far (LogEvent records). */
  stdoutLines(): number;
  exited: Promise<number>;
  /** Resolves true once the startup line is out, false if the process exited first. */
  serving: Promise<boolean>;
  /** The tick the daemon read at startup (from its startup line). */
  startTick(): bigint | null;
  alive(): boolean;
}

export interface DaemonOptions {
  bundle: string;
  address: string;
  tickFile: string;
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
}

/** Spawns the daemon; does not wait (await `serving` for that). */
export function spawnDaemon(o: DaemonOptions): Daemon {
  const proc = spawn(NODE, [o.bundle, 'daemon', '--address', o.address, '--tick-file', o.tickFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, ...o.env },
    ...(o.uid !== undefined ? { uid: o.uid, gid: o.gid ?? o.uid } : {}),
  });
  let err = '';
  let lines = 0;
  proc.stdout!.on('data', (d: Buffer) => {
    for (const b of d) if (b === 10) lines++;
  });
  const exited = new Promise<number>((resolve) =>
    proc.once('exit', (code, sig) => resolve(code ?? 128 + (os.constants.signals[sig as NodeJS.Signals] ?? 0))),
  );
  const serving = new Promise<boolean>((resolve) => {
    proc.stderr!.on('data', (d: Buffer) => {
      if (err.length < 65536) err += d.toString();
      if (/ serving /.test(err)) resolve(true);
    });
    void exited.then(() => resolve(false));
  });
  return {
    proc,
    pid: proc.pid ?? -1,
    stderr: () => err,
    stdoutLines: () => lines,
    exited,
    serving,
    startTick: () => {
      const m = /serving .*; tick (\d+)\n/.exec(err);
      return m ? BigInt(m[1] as string) : null;
    },
    alive: () => proc.exitCode === null && proc.signalCode === null,
  };
}

/** Kills a daemon (if still running) and waits for it. */
export async function killDaemon(d: Daemon | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!d) return;
  if (d.alive()) d.proc.kill(signal);
  await d.exited;
}

/** What a section leaves behind: its daemon killed, its clients closed, its bus stopped, its folder removed. */
export async function tearDown(o: { daemon?: Daemon | undefined; clients?: Array<{ close(): Promise<void> }>; bus?: Bus | undefined; dir?: string | undefined }): Promise<void> {
  await killDaemon(o.daemon);
  await Promise.all((o.clients ?? []).map((c) => c.close()));
  await o.bus?.stop();
  if (o.dir) fs.rmSync(o.dir, { recursive: true, force: true });
}

/** Strict reading of a tick file: exactly ASCII digits and a newline, as the daemon writes it. */
export function readTickStrict(file: string): bigint {
  const text = fs.readFileSync(file, 'latin1');
  if (!/^(0|[1-9][0-9]{0,19})\n$/.test(text)) throw new Error(`${file} holds ${JSON.stringify(text.slice(0, 40))}`);
  const v = BigInt(text.trim());
  if (v > 2n ** 64n - 1n) throw new Error(`${file} holds a value over 2^64-1`);
  return v;
}

/** VmRSS of a process in KiB. */
export function rssKiB(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(s);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

export interface Cmd {
  code: number;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, args: string[], opts: { uid?: number; gid?: number; input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Cmd {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 60_000,
    env: { ...process.env, ...opts.env },
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
  });
  return { code: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
}

/** Percentile of a numeric sample (nearest rank). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

export const maxBig = (xs: Iterable<bigint>, init = 0n): bigint => {
  let m = init;
  for (const x of xs) if (x > m) m = x;
  return m;
};
