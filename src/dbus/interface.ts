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

/**
 * The standard interfaces the object implements, described like METHODS: the service checks
 * calls against these signatures and the introspection XML is written from them.
 */
export const STANDARD_METHODS = {
  [PEER_INTERFACE]: {
    Ping: method([], []),
    GetMachineId: method([], [{ name: 'machine_uuid', type: 's' }]),
  },
  [INTROSPECTABLE_INTERFACE]: {
    Introspect: method([], [{ name: 'xml_data', type: 's' }]),
  },
  [PROPERTIES_INTERFACE]: {
    Get: method(
      [
        { name: 'interface_name', type: 's' },
        { name: 'property_name', type: 's' },
      ],
      [{ name: 'value', type: 'v' }],
    ),
    GetAll: method([{ name: 'interface_name', type: 's' }], [{ name: 'props', type: 'a{sv}' }]),
    Set: method(
      [
        { name: 'interface_name', type: 's' },
        { name: 'property_name', type: 's' },
        { name: 'value', type: 'v' },
      ],
      [],
    ),
  },
} as const satisfies Record<string, Record<string, MethodSpec>>;

const STANDARD_SIGNALS: Record<string, Record<string, readonly Arg[]>> = {
  [PROPERTIES_INTERFACE]: {
    PropertiesChanged: [
      { name: 'interface_name', type: 's' },
      { name: 'changed_properties', type: 'a{sv}' },
      { name: 'invalidated_properties', type: 'as' },
    ],
  },
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

function argXml(a: Arg, direction?: 'in' | 'out'): string {
  return `      <arg name="${esc(a.name)}" type="${esc(a.type)}"${direction ? ` direction="${direction}"` : ''}/>\n`;
}

/** One <interface> element: its methods, then signals, then read-only properties. */
function interfaceXml(
  name: string,
  methods: Record<string, MethodSpec>,
  signals: Record<string, readonly Arg[]> = {},
  properties: Record<string, { type: string }> = {},
): string {
  let x = `  <interface name="${name}">\n`;
  for (const [member, m] of Object.entries(methods)) {
    x += `    <method name="${member}">\n`;
    for (const a of m.in) x += argXml(a, 'in');
    for (const a of m.out) x += argXml(a, 'out');
    x += `    </method>\n`;
  }
  for (const [member, args] of Object.entries(signals)) {
    x += `    <signal name="${member}">\n`;
    for (const a of args) x += argXml(a);
    x += `    </signal>\n`;
  }
  for (const [prop, p] of Object.entries(properties)) {
    x += `    <property name="${prop}" type="${p.type}" access="read">\n`;
    x += `      <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="false"/>\n`;
    x += `    </property>\n`;
  }
  return x + `  </interface>\n`;
}

/** The Chronos interface as introspection XML (one <interface> element). */
export function chronosInterfaceXml(): string {
  return interfaceXml(INTERFACE, METHODS, SIGNALS, PROPERTIES);
}

const STANDARD_INTERFACES_XML = Object.entries(STANDARD_METHODS)
  .map(([name, methods]) => interfaceXml(name, methods, STANDARD_SIGNALS[name]))
  .join('');

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
