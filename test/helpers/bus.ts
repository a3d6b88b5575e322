// Test fixtures: a private dbus-daemon on a unix:path socket in a temp folder (never the
// host's buses), and the real Chronos daemon started from the bundle.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const BUNDLE = path.join(ROOT, 'dist', 'chronos.cjs');
export const NODE = process.execPath;

export interface TestBus {
  dir: string;
  address: string;
  socket: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** A permissive bus: no policy applies (everyone may own and call everything). */
export function permissiveConfig(socket: string, maxMessageSize = 134217728): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <limit name="max_replies_per_connection">50000</limit>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_message_size">${maxMessageSize}</limit>
  <limit name="reply_timeout">60000</limit>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
`;
}

export function tempDir(prefix = 'chronos-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startBus(opts: { dir?: string; config?: (socket: string) => string } = {}): Promise<TestBus> {
  const dir = opts.dir ?? tempDir();
  const socket = path.join(dir, 'bus');
  const conf = path.join(dir, 'bus.conf');
  fs.writeFileSync(conf, (opts.config ?? permissiveConfig)(socket));
  const proc = spawn('dbus-daemon', ['--config-file', conf, '--nofork', '--print-address=1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const address = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl).trim());
    });
    proc.once('exit', (code) => reject(new Error(`dbus-daemon exited ${code}`)));
    proc.once('error', reject);
  });
  proc.stderr!.resume();
  return {
    dir,
    address: `unix:path=${socket}`,
    socket,
    proc,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('exit', r));
      }
      void address;
    },
  };
}

export interface Daemon {
  proc: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  /** Resolves with the exit code (or 128+signal). */
  exited: Promise<number>;
}

/** Starts `chronos daemon` and waits for its startup line (or its exit). */
export async function startDaemon(
  address: string,
  tickFile: string,
  opts: { env?: NodeJS.ProcessEnv; args?: string[]; wait?: boolean; uid?: number; gid?: number; nodeArgs?: string[] } = {},
): Promise<Daemon> {
  const proc = spawn(NODE, [...(opts.nodeArgs ?? []), BUNDLE, 'daemon', '--address', address, '--tick-file', tickFile, ...(opts.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
  });
  let err = '';
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) =>
    proc.once('exit', (code, sig) => resolve(code ?? 128 + (os.constants.signals[sig as NodeJS.Signals] ?? 0))),
  );
  await new Promise<void>((resolve) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/ serving /.test(err)) resolve();
    });
    void exited.then(() => resolve());
  });
  return { proc, stderr: () => err, stdout: () => out, exited };
}

export async function stopDaemon(d: Daemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<number> {
  if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill(signal);
  return d.exited;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (synchronously: tests here are sequential per file). */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; uid?: number; gid?: number } = {}): RunResult {
  const r = spawnSync(cmd, args, {
    env: { ...process.env, ...opts.env },
    input: opts.input,
    encoding: 'utf8',
    timeout: 60_000,
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
  });
  return { code: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** chronos-ctl through the bundle, as the `chronos ctl` subcommand. */
export function ctl(address: string, args: string[], opts: { env?: NodeJS.ProcessEnv; uid?: number } = {}): RunResult {
  return run(NODE, [BUNDLE, 'ctl', '--address', address, ...args], opts);
}

/** An async version for concurrent CLI runs. */
export function runAsync(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code: code ?? 128, stdout, stderr }));
  });
}

export function readTick(file: string): bigint {
  return BigInt(fs.readFileSync(file, 'utf8').trim());
}
