// Choosing and connecting to a bus, shared by the daemon, the client and the CLI.

import fs from 'node:fs';
import dbus from 'dbus-next';
import type { MessageBus } from 'dbus-next';

export type BusKind = 'system' | 'session';

export const SYSTEM_BUS_DEFAULT = 'unix:path=/var/run/dbus/system_bus_socket';

export interface BusChoice {
  session?: boolean | undefined;
  system?: boolean | undefined;
}

/** --system wins over --session, which wins over CHRONOS_USE_SESSION_BUS; the default is the system bus. */
export function chooseBus(choice: BusChoice, env: NodeJS.ProcessEnv = process.env): BusKind {
  if (choice.system) return 'system';
  if (choice.session) return 'session';
  return env.CHRONOS_USE_SESSION_BUS ? 'session' : 'system';
}

export class BusAddressError extends Error {
  override readonly name = 'BusAddressError';
}

/** The address of a bus, as D-Bus clients find it. */
export function busAddress(kind: BusKind, env: NodeJS.ProcessEnv = process.env): string {
  if (kind === 'system') return env.DBUS_SYSTEM_BUS_ADDRESS || SYSTEM_BUS_DEFAULT;
  if (env.DBUS_SESSION_BUS_ADDRESS) return env.DBUS_SESSION_BUS_ADDRESS;
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime && fs.existsSync(`${runtime}/bus`)) return `unix:path=${runtime}/bus`;
  throw new BusAddressError('no session bus: DBUS_SESSION_BUS_ADDRESS is not set and $XDG_RUNTIME_DIR/bus does not exist');
}

function unescapeValue(v: string): string {
  return v.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * Rewrites a D-Bus address list into the form dbus-next connects to without its optional
 * native module: unix paths and abstract sockets become `unix:socket=` (Node's net module
 * reaches abstract sockets itself), tcp stays. Listen-only forms are rejected.
 */
export function connectableAddress(address: string): string {
  const out: string[] = [];
  for (const entry of address.split(';')) {
    if (!entry) continue;
    const colon = entry.indexOf(':');
    if (colon < 0) continue;
    const family = entry.slice(0, colon);
    const params = new Map<string, string>();
    for (const kv of entry.slice(colon + 1).split(',')) {
      const eq = kv.indexOf('=');
      if (eq > 0) params.set(kv.slice(0, eq), unescapeValue(kv.slice(eq + 1)));
    }
    if (family === 'unix') {
      const p = params.get('path');
      const abs = params.get('abstract');
      const target = p ?? (abs !== undefined ? `\0${abs}` : undefined);
      if (target === undefined || /[,;:=]/.test(target)) continue;
      out.push(`unix:socket=${target}`);
    } else if (family === 'tcp') {
      out.push(entry);
    }
  }
  if (out.length === 0) throw new BusAddressError(`cannot connect to bus address '${address}'`);
  return out.join(';');
}

export class BusConnectError extends Error {
  override readonly name = 'BusConnectError';
  constructor(
    readonly address: string,
    detail: string,
  ) {
    super(`cannot connect to the bus at ${address}: ${detail}`);
  }
}

/** Connects and completes Hello; rejects with BusConnectError (never throws an 'error' event). */
export function connectBus(address: string, timeoutMs = 25_000): Promise<MessageBus> {
  return new Promise((resolve, reject) => {
    let bus: MessageBus;
    try {
      bus = dbus.sessionBus({ busAddress: connectableAddress(address) });
    } catch (err) {
      reject(new BusConnectError(address, (err as Error).message));
      return;
    }
    const timer = setTimeout(() => {
      fail(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      bus.removeListener('connect', ok);
      try {
        bus.disconnect();
      } catch {
        // already gone
      }
      const code = (err as NodeJS.ErrnoException).code;
      reject(new BusConnectError(address, code ? `${code}` : err.message));
    };
    const ok = () => {
      clearTimeout(timer);
      bus.removeListener('error', fail);
      // Later errors are reported through the stream's close; keep a listener so an
      // 'error' event never becomes an uncaught exception.
      bus.on('error', () => {});
      resolve(bus);
    };
    bus.once('connect', ok);
    bus.once('error', fail);
  });
}

/** The underlying socket of a connected bus, to learn when it closes. */
export function busStream(bus: MessageBus): NodeJS.ReadWriteStream & { destroy(): void; destroyed: boolean } {
  return (bus as unknown as { _connection: { stream: NodeJS.ReadWriteStream & { destroy(): void; destroyed: boolean } } })
    ._connection.stream;
}
