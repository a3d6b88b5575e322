// The Chronos client library: a typed connection to the daemon. The CLI is built on it.
//
//   import { ChronosClient } from 'chronos';
//   const chronos = await ChronosClient.connect({ bus: 'session' });
//   const tick = await chronos.nextTick();      // bigint, durable before it returns
//   await chronos.close();

import dbus from 'dbus-next';
import type { Message as DBusMessage, MessageBus } from 'dbus-next';
import {
  BUS_NAME,
  DBUS_NAME,
  DBUS_PATH,
  ERRORS,
  INTERFACE,
  METHODS,
  OBJECT_PATH,
  PEER_INTERFACE,
  PROPERTIES_INTERFACE,
  type MethodName,
} from '../dbus/interface.js';
import { BusAddressError, BusConnectError, busAddress, busStream, chooseBus, connectBus, type BusKind } from '../dbus/bus.js';

export { parsePhiTimestamp, formatPhiTimestamp, PhiFormatError, type PhiTimestamp } from '../engine/phi.js';
export { BUS_NAME, OBJECT_PATH, INTERFACE, ERRORS, METHODS } from '../dbus/interface.js';
export type { BusKind } from '../dbus/bus.js';

const { Message } = dbus;

export type ChronosErrorCode =
  | 'NotRunning'
  | 'AccessDenied'
  | 'InvalidAgentId'
  | 'InvalidArgument'
  | 'Persist'
  | 'Overflow'
  | 'Timeout'
  | 'Failed';

/** Every failure of the client is a ChronosError with a code; `dbusName` is the D-Bus error, if any. */
export class ChronosError extends Error {
  override readonly name = 'ChronosError';
  constructor(
    readonly code: ChronosErrorCode,
    message: string,
    readonly dbusName?: string,
  ) {
    super(message);
  }
}

const NOT_RUNNING = new Set([
  'org.freedesktop.DBus.Error.ServiceUnknown',
  'org.freedesktop.DBus.Error.NameHasNoOwner',
  'org.freedesktop.DBus.Error.Disconnected',
  'org.freedesktop.DBus.Error.UnknownObject',
]);

function codeForDBusError(name: string): ChronosErrorCode {
  switch (name) {
    case ERRORS.InvalidAgentId:
      return 'InvalidAgentId';
    case ERRORS.InvalidArgument:
    case ERRORS.InvalidArgs:
      return 'InvalidArgument';
    case ERRORS.Persist:
      return 'Persist';
    case ERRORS.Overflow:
      return 'Overflow';
    case ERRORS.AccessDenied:
      return 'AccessDenied';
    case 'org.freedesktop.DBus.Error.NoReply':
    case 'org.freedesktop.DBus.Error.Timeout':
    case 'org.freedesktop.DBus.Error.TimedOut':
      return 'Timeout';
  }
  if (NOT_RUNNING.has(name) || name.startsWith('org.freedesktop.DBus.Error.Spawn.')) return 'NotRunning';
  return 'Failed';
}

export interface ConnectOptions {
  /** Which bus; default: the session bus if CHRONOS_USE_SESSION_BUS is set, else the system bus. */
  bus?: BusKind;
  /** An explicit D-Bus address; wins over `bus`. */
  address?: string;
  /** Per-call timeout in milliseconds (default 25000, as libdbus). */
  timeoutMs?: number;
}

export interface PingResult {
  version: string;
  tick: bigint;
}

export type EventListener = (logJson: string) => void;

export class ChronosClient {
  private closed = false;
  private listeners = new Set<EventListener>();
  private matchAdded = false;
  /** Calls awaiting a reply, failed at once if the bus connection drops. */
  private inFlight = new Set<(err: ChronosError) => void>();
  private readonly onMessage = (msg: DBusMessage) => {
    if (
      msg.type === dbus.MessageType.SIGNAL &&
      msg.path === OBJECT_PATH &&
      msg.interface === INTERFACE &&
      msg.member === 'EventLogged' &&
      typeof msg.body[0] === 'string'
    ) {
      for (const l of this.listeners) l(msg.body[0] as string);
    }
  };

  private constructor(
    private readonly bus: MessageBus,
    readonly address: string,
    private readonly timeoutMs: number,
  ) {
    bus.on('message', this.onMessage);
    busStream(bus).on('close', () => {
      this.closed = true;
      const lost = new ChronosError('NotRunning', 'the connection to the bus was lost');
      for (const fail of [...this.inFlight]) fail(lost);
    });
  }

  static async connect(opts: ConnectOptions = {}): Promise<ChronosClient> {
    const timeoutMs = opts.timeoutMs ?? 25_000;
    let address: string;
    try {
      address = opts.address ?? busAddress(opts.bus ?? chooseBus({}));
    } catch (err) {
      throw new ChronosError('NotRunning', (err as BusAddressError).message);
    }
    try {
      const bus = await connectBus(address, timeoutMs);
      return new ChronosClient(bus, address, timeoutMs);
    } catch (err) {
      const e = err as BusConnectError;
      throw new ChronosError(/no answer within/.test(e.message) ? 'Timeout' : 'NotRunning', e.message);
    }
  }

  /** The last tick handed out. */
  async getTick(): Promise<bigint> {
    return (await this.callChronos('GetTick', []))[0] as bigint;
  }

  /** Advances the clock; the returned tick is durable and never handed out again. */
  async nextTick(): Promise<bigint> {
    return (await this.callChronos('NextTick', []))[0] as bigint;
  }

  /** Advances the clock and returns `UTC::AGENT::TICK-NNNNNNNNNN`. */
  async getPhiTimestamp(agentId: string): Promise<string> {
    return (await this.callChronos('GetPhiTimestamp', [agentId]))[0] as string;
  }

  /** Advances the clock, logs the event, and returns its JSON record. */
  async logEvent(agentId: string, action: string, status: string, details = ''): Promise<string> {
    return (await this.callChronos('LogEvent', [agentId, action, status, details]))[0] as string;
  }

  /** The daemon's version and current tick, in one round trip. */
  async ping(): Promise<PingResult> {
    const body = await this.call(PROPERTIES_INTERFACE, 'GetAll', 's', [INTERFACE]);
    const props = body[0] as Record<string, { value: unknown }>;
    return { version: String(props.Version?.value ?? ''), tick: BigInt(props.Tick?.value as bigint) };
  }

  /** Peer.Ping: reachability only. */
  async peerPing(): Promise<void> {
    await this.call(PEER_INTERFACE, 'Ping', '', []);
  }

  /** Asks the daemon to stop (root or the daemon's own user only). */
  async shutdown(): Promise<void> {
    await this.callChronos('Shutdown', []);
  }

  /** Calls `listener` with each EventLogged JSON record; returns a function that unsubscribes. */
  async onEvent(listener: EventListener): Promise<() => void> {
    if (!this.matchAdded) {
      const rule = `type='signal',sender='${BUS_NAME}',path='${OBJECT_PATH}',interface='${INTERFACE}',member='EventLogged'`;
      await this.callRaw(DBUS_NAME, DBUS_PATH, DBUS_NAME, 'AddMatch', 's', [rule]);
      this.matchAdded = true;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when the connection to the bus closes. */
  whenClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => busStream(this.bus).once('close', () => r()));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.bus.removeListener('message', this.onMessage);
    const stream = busStream(this.bus);
    await new Promise<void>((resolve) => {
      if (stream.destroyed) return resolve();
      stream.once('close', () => resolve());
      try {
        this.bus.disconnect();
      } catch {
        resolve();
      }
      setTimeout(() => {
        stream.destroy();
        resolve();
      }, 1000).unref();
    });
  }

  private callChronos(member: MethodName, body: unknown[]): Promise<unknown[]> {
    return this.call(INTERFACE, member, METHODS[member].inSignature, body);
  }

  private call(iface: string, member: string, signature: string, body: unknown[]): Promise<unknown[]> {
    return this.callRaw(BUS_NAME, OBJECT_PATH, iface, member, signature, body);
  }

  private callRaw(
    destination: string,
    path: string,
    iface: string,
    member: string,
    signature: string,
    body: unknown[],
  ): Promise<unknown[]> {
    if (this.closed) return Promise.reject(new ChronosError('NotRunning', 'the connection to the bus is closed'));
    return new Promise<unknown[]>((resolve, reject) => {
      const fail = (err: ChronosError) => {
        clearTimeout(timer);
        this.inFlight.delete(fail);
        reject(err);
      };
      const timer = setTimeout(() => fail(new ChronosError('Timeout', `${member}: no reply within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.inFlight.add(fail);
      let msg: DBusMessage;
      try {
        msg = new Message({ destination, path, interface: iface, member, signature, body });
      } catch (err) {
        fail(new ChronosError('InvalidArgument', (err as Error).message.split('\n')[0] as string));
        return;
      }
      this.bus.call(msg).then(
        (reply) => {
          clearTimeout(timer);
          this.inFlight.delete(fail);
          resolve(reply?.body ?? []);
        },
        (err: { type?: string; text?: string; message?: string }) => {
          if (err && typeof err.type === 'string') {
            fail(new ChronosError(codeForDBusError(err.type), err.text ?? err.type, err.type));
          } else {
            // No D-Bus error: the connection is gone, or dbus-next refused to marshal the call.
            const text = String(err?.message ?? err).split('\n')[0] as string;
            fail(new ChronosError(this.closed || /closed/i.test(text) ? 'NotRunning' : 'InvalidArgument', text));
          }
        },
      );
    });
  }
}
