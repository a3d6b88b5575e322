// The Chronos object on the bus: one method handler in front of dbus-next's own dispatch,
// one vtable for every interface the object has. Every call gets a reply or a named error;
// nothing falls through to dbus-next's generic handlers (which would leak JS stacks).

import fs from 'node:fs';
import dbus from 'dbus-next';
import type { Message as DBusMessage, MessageBus } from 'dbus-next';
import { Clock, OverflowError, PersistError } from '../engine/clock.js';
import { WallClock } from '../engine/wall-clock.js';
import { agentIdProblem, fieldProblem, FIELD_MAX_BYTES, DETAILS_MAX_BYTES } from '../engine/agent-id.js';
import { formatUtcNs, formatTick } from '../engine/phi.js';
import { formatEvent } from '../engine/event.js';
import {
  DBUS_NAME,
  DBUS_PATH,
  ERRORS,
  INTERFACE,
  INTROSPECTABLE_INTERFACE,
  METHODS,
  OBJECT_PATH,
  PEER_INTERFACE,
  PROPERTIES,
  PROPERTIES_INTERFACE,
  STANDARD_METHODS,
  introspectXml,
  type ErrorName,
  type MethodName,
  type MethodSpec,
} from './interface.js';
import { attachChronosFastPath, type FastPath } from './fast/index.js';

const { Message, Variant, MessageType, MessageFlag } = dbus;

export interface ServiceOptions {
  bus: MessageBus;
  clock: Clock;
  version: string;
  wallClock?: WallClock;
  /** uid allowed to call Shutdown besides root: the daemon's own. */
  ownUid?: number;
  /** Each LogEvent record, as one JSON line (the daemon writes it to stdout). */
  onEvent?: (json: string) => void;
  /** Called after Shutdown has been answered. */
  onShutdown?: () => void;
}

/** An error that reaches the caller by name. Messages are one line. */
export class CallError extends Error {
  constructor(
    readonly dbusName: ErrorName,
    message: string,
  ) {
    super(message.replace(/[\r\n]+/g, ' '));
  }
}

type Call = DBusMessage & { flags: number; sender: string; serial: number };

// Indexed by the interface and member names calls carry.
const STANDARD_MEMBERS: Record<string, Record<string, MethodSpec>> = STANDARD_METHODS;

function readMachineId(): string {
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = fs.readFileSync(f, 'utf8').trim();
      if (/^[0-9a-f]{32}$/.test(id)) return id;
    } catch {
      // try the next one
    }
  }
  throw new CallError(ERRORS.Failed, 'no machine id on this host');
}

export class ChronosService {
  private readonly bus: MessageBus;
  private readonly clock: Clock;
  private readonly wall: WallClock;
  private readonly ownUid: number;
  private readonly handler: (msg: DBusMessage) => boolean;
  /** Hot calls and their `t` replies without dbus-next's generic codec (src/dbus/fast/). */
  private readonly fast: FastPath | null;
  private closed = false;

  constructor(private readonly opts: ServiceOptions) {
    this.bus = opts.bus;
    this.clock = opts.clock;
    this.wall = opts.wallClock ?? new WallClock();
    this.ownUid = opts.ownUid ?? (typeof process.getuid === 'function' ? process.getuid() : 0);
    this.handler = (msg) => this.dispatch(msg as Call);
    this.bus.addMethodHandler(this.handler);
    this.fast = attachChronosFastPath(this.bus, this.handler);
  }

  /** Stops answering: later calls fall to dbus-next's default (UnknownMethod). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.bus.removeMethodHandler(this.handler);
  }

  // ---- replies -------------------------------------------------------------------------

  private send(msg: DBusMessage): void {
    try {
      this.bus.send(msg);
    } catch {
      // The connection is gone; the daemon notices through the stream and exits.
    }
  }

  private reply(call: Call, signature: string, body: unknown[]): void {
    if (call.flags & MessageFlag.NO_REPLY_EXPECTED) return;
    if (signature === 't' && this.fast?.sendReturnT(call, body[0] as bigint)) return;
    this.send(Message.newMethodReturn(call, signature, body));
  }

  private fail(call: Call, name: ErrorName | string, text: string): void {
    if (call.flags & MessageFlag.NO_REPLY_EXPECTED) return;
    this.send(Message.newError(call as unknown as string, name, text.replace(/[\r\n]+/g, ' ')));
  }

  private failWith(call: Call, err: unknown): void {
    if (err instanceof CallError) return this.fail(call, err.dbusName, err.message);
    if (err instanceof OverflowError) return this.fail(call, ERRORS.Overflow, err.message);
    if (err instanceof PersistError) return this.fail(call, ERRORS.Persist, err.message);
    const text = err instanceof Error ? err.message : String(err);
    this.fail(call, ERRORS.Failed, `internal error: ${text}`);
  }

  // ---- dispatch ------------------------------------------------------------------------

  private dispatch(call: Call): boolean {
    if (call.type !== MessageType.METHOD_CALL) return false;
    try {
      this.route(call);
    } catch (err) {
      this.failWith(call, err);
    }
    return true;
  }

  private route(call: Call): void {
    const path = call.path;
    const member = call.member ?? '';
    const signature = call.signature ?? '';
    let iface: string | undefined = call.interface || undefined;

    if (path !== OBJECT_PATH) {
      // Ancestors of our object exist for introspection only; Peer works on any path.
      if (iface === PEER_INTERFACE || (!iface && member in (STANDARD_MEMBERS[PEER_INTERFACE] ?? {}))) {
        return this.standard(call, PEER_INTERFACE, member, signature);
      }
      const xml = introspectXml(path);
      if (xml !== null && (iface === INTROSPECTABLE_INTERFACE || (!iface && member === 'Introspect'))) {
        return this.standard(call, INTROSPECTABLE_INTERFACE, member, signature);
      }
      if (xml === null) throw new CallError(ERRORS.UnknownObject, `no object at path '${path}'`);
      throw new CallError(ERRORS.UnknownMethod, `no method '${member}' at path '${path}'`);
    }

    if (!iface) {
      // A call without an interface names a member; look it up in every interface we have.
      if (member in METHODS) iface = INTERFACE;
      else iface = Object.keys(STANDARD_MEMBERS).find((i) => member in (STANDARD_MEMBERS[i] ?? {}));
      if (!iface) throw new CallError(ERRORS.UnknownMethod, `no method '${member}' on ${OBJECT_PATH}`);
    }

    if (iface === INTERFACE) {
      const spec = (METHODS as Record<string, (typeof METHODS)[MethodName]>)[member];
      if (!spec) throw new CallError(ERRORS.UnknownMethod, `no method '${member}' in interface ${INTERFACE}`);
      if (signature !== spec.inSignature) {
        throw new CallError(
          ERRORS.InvalidArgs,
          `${member} takes signature '${spec.inSignature}', got '${signature}'`,
        );
      }
      return this.chronos(call, member as MethodName, (call.body ?? []) as string[]);
    }
    if (iface in STANDARD_MEMBERS) return this.standard(call, iface, member, signature);
    throw new CallError(ERRORS.UnknownInterface, `no interface '${iface}' on ${OBJECT_PATH}`);
  }

  // ---- org.jesternet.Chronos -----------------------------------------------------------

  private chronos(call: Call, member: MethodName, args: string[]): void {
    switch (member) {
      case 'GetTick':
        return this.reply(call, 't', [this.clock.tick]);
      case 'NextTick':
        return this.clock.nextCallback((err, tick) => {
          if (err) this.failWith(call, err);
          else this.reply(call, 't', [tick]);
        });
      case 'GetPhiTimestamp': {
        const agentId = args[0] as string;
        const problem = agentIdProblem(agentId);
        if (problem) throw new CallError(ERRORS.InvalidAgentId, problem);
        return this.clock.nextCallback((err, tick) => {
          if (err) this.failWith(call, err);
          else this.reply(call, 's', [this.stamp(agentId, tick)]);
        });
      }
      case 'LogEvent': {
        const [agentId, action, status, details] = args as [string, string, string, string];
        const problem = agentIdProblem(agentId);
        if (problem) throw new CallError(ERRORS.InvalidAgentId, problem);
        const argProblem =
          fieldProblem('action', action, FIELD_MAX_BYTES) ??
          fieldProblem('status', status, FIELD_MAX_BYTES) ??
          fieldProblem('details', details, DETAILS_MAX_BYTES);
        if (argProblem) throw new CallError(ERRORS.InvalidArgument, argProblem);
        return this.clock.nextCallback((err, tick) => {
          if (err) return this.failWith(call, err);
          const json = formatEvent(this.stamp(agentId, tick), action, status, details);
          this.reply(call, 's', [json]);
          this.opts.onEvent?.(json);
          this.send(Message.newSignal(OBJECT_PATH, INTERFACE, 'EventLogged', 's', [json]));
        });
      }
      case 'Shutdown':
        return void this.shutdown(call);
    }
  }

  private stamp(agentId: string, tick: bigint): string {
    return `${formatUtcNs(this.wall.nowNs())}::${agentId}::${formatTick(tick)}`;
  }

  private async shutdown(call: Call): Promise<void> {
    let uid: number;
    try {
      const reply = await this.bus.call(
        new Message({
          destination: DBUS_NAME,
          path: DBUS_PATH,
          interface: DBUS_NAME,
          member: 'GetConnectionUnixUser',
          signature: 's',
          body: [call.sender],
        }),
      );
      uid = Number(reply?.body[0]);
      if (!Number.isInteger(uid)) throw new Error('no uid');
    } catch (err) {
      return this.fail(call, ERRORS.AccessDenied, 'cannot determine the caller\'s uid');
    }
    if (uid !== 0 && uid !== this.ownUid) {
      return this.fail(call, ERRORS.AccessDenied, `Shutdown is for root or uid ${this.ownUid}; caller is uid ${uid}`);
    }
    this.reply(call, '', []);
    this.opts.onShutdown?.();
  }

  // ---- standard interfaces -------------------------------------------------------------

  private standard(call: Call, iface: string, member: string, signature: string): void {
    const expected = STANDARD_MEMBERS[iface]?.[member]?.inSignature;
    if (expected === undefined) throw new CallError(ERRORS.UnknownMethod, `no method '${member}' in interface ${iface}`);
    if (signature !== expected) {
      throw new CallError(ERRORS.InvalidArgs, `${iface}.${member} takes signature '${expected}', got '${signature}'`);
    }
    const body = (call.body ?? []) as unknown[];
    switch (`${iface}.${member}`) {
      case `${PEER_INTERFACE}.Ping`:
        return this.reply(call, '', []);
      case `${PEER_INTERFACE}.GetMachineId`:
        return this.reply(call, 's', [readMachineId()]);
      case `${INTROSPECTABLE_INTERFACE}.Introspect`:
        return this.reply(call, 's', [introspectXml(call.path) ?? '']);
      case `${PROPERTIES_INTERFACE}.Get`: {
        const [ifaceName, prop] = body as [string, string];
        this.checkPropertyInterface(ifaceName);
        const spec = (PROPERTIES as Record<string, { type: string }>)[prop];
        if (!spec) throw new CallError(ERRORS.UnknownProperty, `no property '${prop}' in interface ${INTERFACE}`);
        return this.reply(call, 'v', [new Variant(spec.type, this.property(prop))]);
      }
      case `${PROPERTIES_INTERFACE}.GetAll`: {
        const [ifaceName] = body as [string];
        const all: Record<string, unknown> = {};
        if (ifaceName === '' || ifaceName === INTERFACE) {
          for (const [name, spec] of Object.entries(PROPERTIES)) all[name] = new Variant(spec.type, this.property(name));
        } else if (!(ifaceName in STANDARD_MEMBERS)) {
          throw new CallError(ERRORS.UnknownInterface, `no interface '${ifaceName}' on ${OBJECT_PATH}`);
        }
        return this.reply(call, 'a{sv}', [all]);
      }
      case `${PROPERTIES_INTERFACE}.Set`: {
        const [ifaceName, prop] = body as [string, string];
        this.checkPropertyInterface(ifaceName);
        if (!(prop in PROPERTIES)) throw new CallError(ERRORS.UnknownProperty, `no property '${prop}' in interface ${INTERFACE}`);
        throw new CallError(ERRORS.PropertyReadOnly, `property '${prop}' is read-only`);
      }
    }
    throw new CallError(ERRORS.UnknownMethod, `no method '${member}' in interface ${iface}`);
  }

  private checkPropertyInterface(ifaceName: string): void {
    if (ifaceName === '' || ifaceName === INTERFACE) return;
    if (ifaceName in STANDARD_MEMBERS) throw new CallError(ERRORS.UnknownProperty, `interface ${ifaceName} has no properties`);
    throw new CallError(ERRORS.UnknownInterface, `no interface '${ifaceName}' on ${OBJECT_PATH}`);
  }

  private property(name: string): unknown {
    if (name === 'Tick') return this.clock.tick;
    if (name === 'Version') return this.opts.version;
    throw new CallError(ERRORS.UnknownProperty, `no property '${name}'`);
  }
}

