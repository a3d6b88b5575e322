// Daemon mode: load the tick, own the name, serve until told to stop or the bus goes away.
// Thin: the clock lives in src/engine, the object in src/dbus/service.ts.

import os from 'node:os';
import path from 'node:path';
import dbus from 'dbus-next';
import type { MessageBus } from 'dbus-next';
import { defineCommand } from 'citty';
import { Clock } from '../engine/clock.js';
import { TickFile, TickFileCorruptError } from '../engine/tick-file.js';
import { WallClock } from '../engine/wall-clock.js';
import { ChronosService } from '../dbus/service.js';
import { BUS_NAME } from '../dbus/interface.js';
import { busAddress, busStream, chooseBus, connectBus, type BusKind } from '../dbus/bus.js';
import { NODE_VERSION, VERSION } from '../version.js';
import { runCitty, UsageError, type Exit } from './cli-runtime.js';
import { lockTickFile } from './tick-lock.js';

/** Exit codes of the daemon, documented in README and chronosd-dbus(8). */
export const DAEMON_EXIT = {
  ok: 0,
  tickFile: 1,
  usage: 2,
  bus: 3,
  name: 4,
} as const;

const PROG = 'chronosd-dbus';

export function defaultTickFile(kind: BusKind, env: NodeJS.ProcessEnv = process.env): string {
  if (env.STATE_DIRECTORY) return path.join(env.STATE_DIRECTORY.split(':')[0] as string, 'tick.dat');
  if (kind === 'system') return '/var/lib/chronos/tick.dat';
  const state = env.XDG_STATE_HOME || path.join(env.HOME || os.homedir(), '.local', 'state');
  return path.join(state, 'chronos', 'tick.dat');
}

class DaemonExit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const log = (line: string) => process.stderr.write(`${PROG}: ${line}\n`);

export const daemonCommand = defineCommand({
  meta: { name: PROG, version: VERSION, description: 'Chronos tick daemon: serves org.jesternet.Chronos on D-Bus' },
  args: {
    system: { type: 'boolean', description: 'Serve on the system bus (the default)' },
    session: { type: 'boolean', description: 'Serve on the session bus (also: CHRONOS_USE_SESSION_BUS=1)' },
    address: { type: 'string', valueHint: 'ADDRESS', description: 'Serve on the bus at this D-Bus address' },
    'tick-file': { type: 'string', valueHint: 'PATH', description: 'Tick file (default: $STATE_DIRECTORY/tick.dat, /var/lib/chronos/tick.dat, or $XDG_STATE_HOME/chronos/tick.dat on the session bus)' },
    version: { type: 'boolean', description: 'Print the version and exit' },
  },
  async run({ args }): Promise<Exit> {
    if (args.version) {
      process.stdout.write(`${PROG} ${VERSION} (node ${NODE_VERSION})\n`);
      return 0;
    }
    if (args.system && args.session) throw new UsageError('--system and --session exclude each other');
    const kind = chooseBus(args);
    let address: string;
    try {
      address = args.address || busAddress(kind);
    } catch (err) {
      throw new DaemonExit(DAEMON_EXIT.bus, (err as Error).message);
    }
    const file = new TickFile(args['tick-file'] || defaultTickFile(kind));
    return serve(file, address, args.address ? `bus ${address}` : `${kind} bus`);
  },
});

async function serve(file: TickFile, address: string, busLabel: string): Promise<Exit> {
  let initial: bigint;
  try {
    initial = file.open();
  } catch (err) {
    if (err instanceof TickFileCorruptError) {
      throw new DaemonExit(DAEMON_EXIT.tickFile, `refusing to start: tick file ${err.message}; it was left untouched`);
    }
    throw new DaemonExit(DAEMON_EXIT.tickFile, `cannot prepare tick file ${file.path}: ${(err as Error).message}`);
  }
  try {
    await lockTickFile(file.path);
  } catch (err) {
    throw new DaemonExit(DAEMON_EXIT.tickFile, `refusing to start: ${(err as Error).message}`);
  }

  let bus: MessageBus;
  try {
    bus = await connectBus(address);
  } catch (err) {
    throw new DaemonExit(DAEMON_EXIT.bus, (err as Error).message);
  }

  const clock = new Clock(file, initial);
  let stopping: Promise<Exit> | null = null;
  let finish!: (code: Exit) => void;
  const done = new Promise<Exit>((r) => (finish = r));

  process.stdout.on('error', () => {
    // stdout closed (journal gone): events still go out as signals.
  });
  const wallClock = new WallClock();
  wallClock.calibrate();
  const service = new ChronosService({
    bus,
    clock,
    wallClock,
    version: VERSION,
    onEvent: (json) => process.stdout.write(`${json}\n`),
    onShutdown: () => void stop('Shutdown called', DAEMON_EXIT.ok),
  });

  // Answers still in flight are finished before the name is given up and the bus closed.
  const stop = (why: string, code: Exit, releaseName = true): Promise<Exit> => {
    if (stopping) return stopping;
    stopping = (async () => {
      if (releaseName) {
        await Promise.race([bus.releaseName(BUS_NAME).catch(() => undefined), sleep(2000)]);
      }
      await clock.whenIdle();
      // Let replies queued by the last flush reach the socket.
      await new Promise((r) => setImmediate(r));
      service.close();
      log(`stopped (${why}); tick ${clock.tick} durable in ${file.path}`);
      try {
        bus.disconnect();
      } catch {
        // already closed
      }
      finish(code);
      return code;
    })();
    return stopping;
  };

  const stream = busStream(bus);
  stream.on('close', () => {
    if (!stopping) void stop('the bus connection was lost', DAEMON_EXIT.bus, false);
  });
  process.on('SIGTERM', () => void stop('SIGTERM', DAEMON_EXIT.ok));
  process.on('SIGINT', () => void stop('SIGINT', DAEMON_EXIT.ok));

  let reply: number;
  try {
    reply = (await bus.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE)) as number;
  } catch (err) {
    service.close();
    bus.disconnect();
    const e = err as { type?: string; text?: string; message?: string };
    throw new DaemonExit(DAEMON_EXIT.name, `cannot own ${BUS_NAME} on the ${busLabel}: ${e.text ?? e.message ?? e.type}`);
  }
  if (reply !== dbus.RequestNameReply.PRIMARY_OWNER) {
    service.close();
    bus.disconnect();
    throw new DaemonExit(
      DAEMON_EXIT.name,
      `${BUS_NAME} is already owned on the ${busLabel} by another process; not taking it over`,
    );
  }
  log(
    `${VERSION} (node ${NODE_VERSION}) serving ${BUS_NAME} on the ${busLabel} as ${(bus as unknown as { name: string }).name}; ` +
      `tick file ${file.path}; tick ${clock.tick}`,
  );
  return done;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

export async function runDaemon(argv: string[]): Promise<number> {
  return runCitty(daemonCommand, argv, {
    prog: PROG,
    usageExit: DAEMON_EXIT.usage,
    onError: (err) => {
      if (err instanceof DaemonExit) {
        log(err.message);
        return err.code;
      }
      return undefined;
    },
  });
}
