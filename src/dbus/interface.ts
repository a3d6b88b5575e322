// The one source of truth for Chronos on D-Bus: names, signatures, argument names, error
// names and the introspection XML. The service, the client, the CLI and the tests import it.

export const BUS_NAME = 'org.jesternet.Chronos';
export const OBJECT_PATH = '/org/jesternet/Chronos';
export const INTERFACE = 'org.jesternet.Chronos';

export const DBUS_NAME = 'org.freedesktop.DBus';
export const DBUS_PATH = '/org/freedesktop/DBus';
export const PROPERTIES_INTERFACE = 'org.freedesktop.DBus.Properties';
export const INTROSPECTABLE_INTERFACE = 'org.freedesktop.DBus.Introspectable';
export const PEER_INTERFACE = 'org.freedesktop.DBus.Peer';

export interface Arg {
  readonly name: string;
  readonly type: string;
}

export interface MethodSpec {
  readonly in: readonly Arg[];
  readonly out: readonly Arg[];
  /** Signature strings, derived from the args. */
  readonly inSignature: string;
  readonly outSignature: string;
}

function method(inArgs: Arg[], outArgs: Arg[]): MethodSpec {
  return {
    in: inArgs,
    out: outArgs,
    inSignature: inArgs.map((a) => a.type).join(''),
    outSignature: outArgs.map((a) => a.type).join(''),
  };
}

export const METHODS = {
  GetTick: method([], [{ name: 'tick', type: 't' }]),
  NextTick: method([], [{ name: 'tick', type: 't' }]),
  GetPhiTimestamp: method([{ name: 'agent_id', type: 's' }], [{ name: 'timestamp', type: 's' }]),
  LogEvent: method(
    [
      { name: 'agent_id', type: 's' },
      { name: 'action', type: 's' },
      { name: 'status', type: 's' },
      { name: 'details', type: 's' },
    ],
    [{ name: 'log_json', type: 's' }],
  ),
  Shutdown: method([], []),
} as const satisfies Record<string, MethodSpec>;

export type MethodName = keyof typeof METHODS;

export const PROPERTIES = {
  /** The last tick handed out; changes with every call, so no PropertiesChanged is emitted. */
  Tick: { type: 't' },
  Version: { type: 's' },
} as const;

export type PropertyName = keyof typeof PROPERTIES;

export const SIGNALS = {
  EventLogged: [{ name: 'log_json', type: 's' }],
} as const satisfies Record<string, readonly Arg[]>;

/** Chronos's own errors, and the standard ones it answers with. */
export const ERRORS = {
  InvalidAgentId: 'org.jesternet.Chronos.Error.InvalidAgentId',
  InvalidArgument: 'org.jesternet.Chronos.Error.InvalidArgument',
  Persist: 'org.jesternet.Chronos.Error.Persist',
  Overflow: 'org.jesternet.Chronos.Error.Overflow',
  AccessDenied: 'org.freedesktop.DBus.Error.AccessDenied',
  InvalidArgs: 'org.freedesktop.DBus.Error.InvalidArgs',
  UnknownMethod: 'org.freedesktop.DBus.Error.UnknownMethod',
  UnknownInterface: 'org.freedesktop.DBus.Error.UnknownInterface',
  UnknownObject: 'org.freedesktop.DBus.Error.UnknownObject',
  UnknownProperty: 'org.freedesktop.DBus.Error.UnknownProperty',
  PropertyReadOnly: 'org.freedesktop.DBus.Error.PropertyReadOnly',
  Failed: 'org.freedesktop.DBus.Error.Failed',
} as const;

export type ErrorName = (typeof ERRORS)[keyof typeof ERRORS];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

function argXml(a: Arg, direction?: 'in' | 'out'): string {
  return `      <arg name="${esc(a.name)}" type="${esc(a.type)}"${direction ? ` direction="${direction}"` : ''}/>\n`;
}

/** The Chronos interface as introspection XML (one <interface> element). */
export function chronosInterfaceXml(): string {
  let x = `  <interface name="${INTERFACE}">\n`;
  for (const [name, m] of Object.entries(METHODS) as [string, MethodSpec][]) {
    x += `    <method name="${name}">\n`;
    for (const a of m.in) x += argXml(a, 'in');
    for (const a of m.out) x += argXml(a, 'out');
    x += `    </method>\n`;
  }
  for (const [name, args] of Object.entries(SIGNALS)) {
    x += `    <signal name="${name}">\n`;
    for (const a of args) x += argXml(a);
    x += `    </signal>\n`;
  }
  for (const [name, p] of Object.entries(PROPERTIES)) {
    x += `    <property name="${name}" type="${p.type}" access="read">\n`;
    x += `      <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="false"/>\n`;
    x += `    </property>\n`;
  }
  return x + `  </interface>\n`;
}

const STANDARD_INTERFACES_XML = `  <interface name="${PEER_INTERFACE}">
    <method name="Ping"/>
    <method name="GetMachineId">
      <arg name="machine_uuid" type="s" direction="out"/>
    </method>
  </interface>
  <interface name="${INTROSPECTABLE_INTERFACE}">
    <method name="Introspect">
      <arg name="xml_data" type="s" direction="out"/>
    </method>
  </interface>
  <interface name="${PROPERTIES_INTERFACE}">
    <method name="Get">
      <arg name="interface_name" type="s" direction="in"/>
      <arg name="property_name" type="s" direction="in"/>
      <arg name="value" type="v" direction="out"/>
    </method>
    <method name="GetAll">
      <arg name="interface_name" type="s" direction="in"/>
      <arg name="props" type="a{sv}" direction="out"/>
    </method>
    <method name="Set">
      <arg name="interface_name" type="s" direction="in"/>
      <arg name="property_name" type="s" direction="in"/>
      <arg name="value" type="v" direction="in"/>
    </method>
    <signal name="PropertiesChanged">
      <arg name="interface_name" type="s"/>
      <arg name="changed_properties" type="a{sv}"/>
      <arg name="invalidated_properties" type="as"/>
    </signal>
  </interface>
`;

const DOCTYPE =
  '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n' +
  ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n';

/**
 * Introspection XML for `path`: the full object at OBJECT_PATH, a node listing the next path
 * element for each of its ancestors, or null for a path that does not exist.
 */
export function introspectXml(path: string): string | null {
  if (path === OBJECT_PATH) {
    return `${DOCTYPE}<node>\n${STANDARD_INTERFACES_XML}${chronosInterfaceXml()}</node>\n`;
  }
  const prefix = path === '/' ? '/' : `${path}/`;
  if (!OBJECT_PATH.startsWith(prefix)) return null;
  const child = OBJECT_PATH.slice(prefix.length).split('/')[0];
  return `${DOCTYPE}<node>\n${STANDARD_INTERFACES_XML}  <node name="${child}"/>\n</node>\n`;
}
