// Generator of hostile D-Bus calls to the Chronos object, each with an oracle written from
// the specification (issue 2), not from the implementation: which replies are valid, which
// named errors are acceptable, and whether the call, when valid, advances the clock or logs
// an event.
import dbus from 'dbus-next';
import {
  BUS_NAME,
  ERRORS,
  INTERFACE,
  INTROSPECTABLE_INTERFACE,
  OBJECT_PATH,
  PEER_INTERFACE,
  PROPERTIES_INTERFACE,
} from '../../../src/dbus/interface.js';
import { parsePhiTimestamp } from '../../../src/client/index.js';

const { Variant } = dbus;

export type Check = (signature: string, body: unknown[]) => string | null;

export interface Case {
  cat: string;
  path: string;
  iface?: string;
  member: string;
  signature: string;
  body: unknown[];
  noReply: boolean;
  /** Valid reply check; absent when only errors are acceptable. */
  reply?: Check;
  /** Acceptable error names; absent when only a reply is acceptable. */
  errors?: string[];
  /** When the call is valid (by the oracle): advances the clock by one. */
  advances: boolean;
  /** When the call is valid: logs one event (stdout line + signal). */
  logs: boolean;
  /** The oracle's verdict: will the daemon carry it out? */
  valid: boolean;
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Agent ids per issue 2: 1..255 bytes of UTF-8, no control characters, no '::', no ':' at either end. */
export function agentIdValid(id: string): boolean {
  return bytes(id) >= 1 && bytes(id) <= 255 && !CONTROL.test(id) && !id.includes('::') && !id.startsWith(':') && !id.endsWith(':');
}

// Pieces hostile strings are made of (no NUL: D-Bus strings cannot hold one, dbus-next
// refuses to marshal it and dbus-daemon would drop the sender). None holds 'Error:', '.js:' or ' at ' so that a reply
// echoing an input can never look like a stack trace by accident.
const PIECES = [
  'agent', 'A', 'z9', '-', '_', '.', ' ', ':', '::', ':::', 'a:b', 'x::', '::y',
  'ä', 'ß', 'Ω', '日本語', '客户端', '🦀', '👩‍💻', 'e\u0301', '\u200f', '\ufeff', '\u2028', '\ufffd', 'عربي',
  '\t', '\n', '\r', '\u001b[31m', '\u007f', '\u0085', '\u009f', '\u0001',
  '"', "'", '\\', '\\n', '%s%n', '{"a":1}', '<x/>', '&amp;', '$(id)', '`id`', '../..', '/', '*',
];

export class Generator {
  constructor(
    private readonly rand: () => number,
    /** Largest string that still fits in one message on the test bus. */
    private readonly maxString: number,
  ) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)] as T;
  }

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }

  /** A string of about `n` bytes made of `unit`. */
  private fill(unit: string, n: number): string {
    return unit.repeat(Math.max(1, Math.ceil(n / bytes(unit))));
  }

  hostileString(): string {
    const r = this.rand();
    if (r < 0.05) return '';
    if (r < 0.75) {
      let s = '';
      for (let i = this.int(1, 6); i > 0; i--) s += this.pick(PIECES);
      return s;
    }
    if (r < 0.9) {
      // Around the 255-byte limit, with multi-byte characters straddling it.
      const unit = this.pick(['a', 'é', '日', '🦀', 'ab']);
      // (Cut by code points: a lone surrogate is not UTF-8 and would be sent as U+FFFD.)
      return [...this.fill(unit, this.int(240, 270))].slice(0, this.int(60, 300)).join('');
    }
    if (r < 0.985) return this.fill(this.pick(['x', 'ü', '::', '\u0001']), this.int(1000, 70_000));
    // Huge: up to what the bus lets through in one message.
    return 'H'.repeat(this.int(Math.floor(this.maxString / 2), this.maxString));
  }

  private validAgent(): string {
    for (;;) {
      const s = this.rand() < 0.5 ? this.pick(['A', 'CLAUDE-A', 'agent-ä', '日本', '🦀-bot', 'x:y', 'e\u0301']) : this.hostileString();
      if (agentIdValid(s)) return s;
    }
  }

  private fieldString(limit: number): string {
    const r = this.rand();
    if (r < 0.4) return this.pick(['', 'ok', 'fail', 'quote " and \\ backslash', 'line\nbreak', '\u0001soh', '🦀', '{"json":true}', '</script>']);
    if (r < 0.7) return this.fill(this.pick(['a', 'é', '日']), limit - this.int(-3, 3)).slice(0, limit + 2);
    if (r < 0.95) return this.hostileString();
    return 'D'.repeat(this.int(limit, Math.min(this.maxString, limit * 20)));
  }

  next(): Case {
    for (;;) {
      const c = this.draw();
      // Keep every message within the bus's limit (the bus drops a sender that exceeds it).
      if (bodyBytes(c.body) <= this.maxString) return c;
    }
  }

  private draw(): Case {
    const noReply = this.rand() < 0.1;
    const r = this.rand();
    let c: Omit<Case, 'noReply'>;
    if (r < 0.1) c = this.valid();
    else if (r < 0.35) c = this.agentIdCase();
    else if (r < 0.45) c = this.fieldsCase();
    else if (r < 0.6) c = this.signatureCase();
    else if (r < 0.67) c = this.unknownMember();
    else if (r < 0.74) c = this.unknownInterface();
    else if (r < 0.82) c = this.unknownPath();
    else if (r < 0.88) c = this.noInterface();
    else c = this.propertiesCase();
    return { ...c, noReply };
  }

  // ---- valid calls ----------------------------------------------------------------------

  private valid(): Omit<Case, 'noReply'> {
    const base = { cat: 'valid', path: OBJECT_PATH, valid: true, logs: false, advances: false };
    switch (this.int(0, 8)) {
      case 0:
        return { ...base, iface: INTERFACE, member: 'NextTick', signature: '', body: [], reply: tickReply(true), advances: true };
      case 1:
        return { ...base, iface: INTERFACE, member: 'GetTick', signature: '', body: [], reply: tickReply(false) };
      case 2: {
        const id = this.validAgent();
        return { ...base, iface: INTERFACE, member: 'GetPhiTimestamp', signature: 's', body: [id], reply: stampReply(id), advances: true };
      }
      case 3: {
        const id = this.validAgent();
        const [a, s, d] = ['act', 'ok', this.pick(['', 'details "q" \\ \n', '🦀'])];
        return { ...base, iface: INTERFACE, member: 'LogEvent', signature: 'ssss', body: [id, a, s, d], reply: logReply(id, a, s, d), advances: true, logs: true };
      }
      case 4:
        return { ...base, iface: PEER_INTERFACE, member: 'Ping', signature: '', body: [], reply: emptyReply };
      case 5:
        return { ...base, iface: PEER_INTERFACE, member: 'GetMachineId', signature: '', body: [], reply: machineIdReply };
      case 6:
        return { ...base, iface: INTROSPECTABLE_INTERFACE, member: 'Introspect', signature: '', body: [], reply: xmlReply(INTERFACE) };
      case 7: {
        const p = this.pick(['Tick', 'Version'] as const);
        return { ...base, iface: PROPERTIES_INTERFACE, member: 'Get', signature: 'ss', body: [this.pick([INTERFACE, '']), p], reply: variantReply(p === 'Tick' ? 't' : 's') };
      }
      default:
        return { ...base, iface: PROPERTIES_INTERFACE, member: 'GetAll', signature: 's', body: [this.pick([INTERFACE, ''])], reply: propsReply };
    }
  }

  // ---- agent ids and fields -------------------------------------------------------------

  private agentIdCase(): Omit<Case, 'noReply'> {
    const id = this.hostileString();
    const ok = agentIdValid(id);
    if (this.rand() < 0.5) {
      return {
        cat: 'agent-id', path: OBJECT_PATH, iface: INTERFACE, member: 'GetPhiTimestamp', signature: 's', body: [id],
        ...(ok ? { reply: stampReply(id) } : { errors: [ERRORS.InvalidAgentId] }),
        advances: true, logs: false, valid: ok,
      };
    }
    return {
      cat: 'agent-id', path: OBJECT_PATH, iface: INTERFACE, member: 'LogEvent', signature: 'ssss', body: [id, 'a', 's', 'd'],
      ...(ok ? { reply: logReply(id, 'a', 's', 'd') } : { errors: [ERRORS.InvalidAgentId] }),
      advances: true, logs: true, valid: ok,
    };
  }

  private fieldsCase(): Omit<Case, 'noReply'> {
    const id = this.rand() < 0.85 ? this.validAgent() : this.hostileString();
    const a = this.rand() < 0.5 ? this.fieldString(255) : 'act';
    const s = this.rand() < 0.5 ? this.fieldString(255) : 'ok';
    const d = this.rand() < 0.7 ? this.fieldString(65536) : '';
    const idOk = agentIdValid(id);
    const fieldsOk = bytes(a) <= 255 && bytes(s) <= 255 && bytes(d) <= 65536;
    const errors: string[] = [];
    // Which check comes first is not specified: with both wrong, either name is right.
    if (!idOk) errors.push(ERRORS.InvalidAgentId);
    if (!fieldsOk) errors.push(ERRORS.InvalidArgument);
    const ok = idOk && fieldsOk;
    return {
      cat: 'fields', path: OBJECT_PATH, iface: INTERFACE, member: 'LogEvent', signature: 'ssss', body: [id, a, s, d],
      ...(ok ? { reply: logReply(id, a, s, d) } : { errors }),
      advances: true, logs: true, valid: ok,
    };
  }

  // ---- wrong signatures -----------------------------------------------------------------

  private bodyFor(sig: string): unknown[] {
    const one = (t: string): unknown => {
      switch (t) {
        case 's': return this.rand() < 0.9 ? this.pick(['x', 'A', '', '::']) : this.hostileString();
        case 'o': return this.pick(['/', OBJECT_PATH, '/a/b']);
        case 'g': return this.pick(['', 's', 'a{sv}']);
        case 'u': return this.int(0, 2 ** 32 - 1);
        case 'i': return -this.int(0, 2 ** 31);
        case 't': return this.pick([0n, 1n, 2n ** 64n - 1n]);
        case 'x': return this.pick([-1n, -(2n ** 63n) + 1n]); // dbus-next rejects -2^63 itself
        case 'b': return this.rand() < 0.5;
        case 'y': return this.int(0, 255);
        case 'd': return this.pick([0, -0, 1e308, -1.5]); // dbus-next refuses to marshal NaN
        case 'ay': return Buffer.alloc(this.int(0, 5000), 0xff);
        case 'as': return Array.from({ length: this.int(0, 2000) }, () => 'x');
        case 'v': return new Variant('s', 'x');
        case 'a{sv}': return { k: new Variant('u', 1), Tick: new Variant('t', 5n) };
        case '(ss)': return ['a', 'b'];
        case 'aas': return [['a'], []];
        default: throw new Error(`no body for ${t}`);
      }
    };
    return splitSignature(sig).map(one);
  }

  private signatureCase(): Omit<Case, 'noReply'> {
    const targets: Array<[string, string, string]> = [
      [INTERFACE, 'GetTick', ''], [INTERFACE, 'NextTick', ''], [INTERFACE, 'GetPhiTimestamp', 's'],
      [INTERFACE, 'LogEvent', 'ssss'], [INTERFACE, 'Shutdown', ''],
      [PROPERTIES_INTERFACE, 'Get', 'ss'], [PROPERTIES_INTERFACE, 'GetAll', 's'], [PROPERTIES_INTERFACE, 'Set', 'ssv'],
      [PEER_INTERFACE, 'Ping', ''], [PEER_INTERFACE, 'GetMachineId', ''], [INTROSPECTABLE_INTERFACE, 'Introspect', ''],
    ];
    const [iface, member, right] = this.pick(targets);
    let sig: string;
    do {
      sig = this.pick(['', 's', 'u', 't', 'x', 'i', 'b', 'y', 'd', 'o', 'g', 'ss', 'sss', 'ssss', 'sssss', 'su', 'us', 'sv', 'ssu', 'ay', 'as', 'v', 'a{sv}', '(ss)', 'aas', 'sssst', 'ssv', 'sss(ss)']);
    } while (sig === right);
    return {
      cat: 'signature', path: OBJECT_PATH, iface, member, signature: sig, body: this.bodyFor(sig),
      errors: [ERRORS.InvalidArgs], advances: false, logs: false, valid: false,
    };
  }

  // ---- unknown members, interfaces, paths -----------------------------------------------

  private unknownMember(): Omit<Case, 'noReply'> {
    const iface = this.pick([INTERFACE, PEER_INTERFACE, INTROSPECTABLE_INTERFACE, PROPERTIES_INTERFACE]);
    const member = this.pick(['Nexttick', 'NextTicks', 'GETTICK', 'Shutdown2', 'X', 'Get', 'Introspect', 'Ping', `M${'m'.repeat(this.int(1, 250))}`, 'SetTick', 'Reset', '_']);
    // A member of another interface is unknown in this one.
    const known: Record<string, string[]> = {
      [INTERFACE]: ['GetTick', 'NextTick', 'GetPhiTimestamp', 'LogEvent', 'Shutdown'],
      [PEER_INTERFACE]: ['Ping', 'GetMachineId'],
      [INTROSPECTABLE_INTERFACE]: ['Introspect'],
      [PROPERTIES_INTERFACE]: ['Get', 'GetAll', 'Set'],
    };
    const m = (known[iface] as string[]).includes(member) ? `${member}X` : member;
    const sig = this.pick(['', 's', 'ss']);
    return { cat: 'unknown-member', path: OBJECT_PATH, iface, member: m, signature: sig, body: this.bodyFor(sig), errors: [ERRORS.UnknownMethod], advances: false, logs: false, valid: false };
  }

  private unknownInterface(): Omit<Case, 'noReply'> {
    const iface = this.pick(['org.jesternet.chronos', 'org.jesternet.Chronos2', 'org.jesternet.Chronos.Error', 'org.freedesktop.DBus', 'org.freedesktop.DBus.ObjectManager', 'a.b', `org.${'x'.repeat(200)}.Y`]);
    const member = this.pick(['NextTick', 'GetTick', 'Shutdown', 'Get', 'Hello']);
    return { cat: 'unknown-interface', path: OBJECT_PATH, iface, member, signature: '', body: [], errors: [ERRORS.UnknownInterface, ERRORS.UnknownMethod], advances: false, logs: false, valid: false };
  }

  private unknownPath(): Omit<Case, 'noReply'> {
    const ancestors = ['/', '/org', '/org/jesternet'];
    const path = this.pick([...ancestors, '/org/jesternet/Chronos/x', '/org/jesternet/chronos', '/a/b/c', `/${'p'.repeat(this.int(1, 300))}`, '/org/jesternet/Chronos/Chronos']);
    const isAncestor = ancestors.includes(path);
    const base = { cat: 'unknown-path', path, advances: false, logs: false, valid: false };
    const missing = [ERRORS.UnknownObject, ERRORS.UnknownMethod, ERRORS.UnknownInterface];
    switch (this.int(0, 4)) {
      case 0:
        // Peer works on any path.
        return { ...base, iface: PEER_INTERFACE, member: 'Ping', signature: '', body: [], reply: emptyReply, valid: true };
      case 1:
        return isAncestor
          ? { ...base, iface: INTROSPECTABLE_INTERFACE, member: 'Introspect', signature: '', body: [], reply: xmlReply(null), valid: true }
          : { ...base, iface: INTROSPECTABLE_INTERFACE, member: 'Introspect', signature: '', body: [], errors: missing };
      case 2:
        return { ...base, iface: INTERFACE, member: 'NextTick', signature: '', body: [], errors: missing };
      case 3:
        return { ...base, iface: PROPERTIES_INTERFACE, member: 'Get', signature: 'ss', body: [INTERFACE, 'Tick'], errors: missing };
      default:
        return { ...base, iface: INTERFACE, member: 'Shutdown', signature: '', body: [], errors: missing };
    }
  }

  private noInterface(): Omit<Case, 'noReply'> {
    const base = { cat: 'no-interface', path: OBJECT_PATH, logs: false };
    switch (this.int(0, 6)) {
      case 0:
        return { ...base, member: 'NextTick', signature: '', body: [], reply: tickReply(true), advances: true, valid: true };
      case 1:
        return { ...base, member: 'GetTick', signature: '', body: [], reply: tickReply(false), advances: false, valid: true };
      case 2:
        return { ...base, member: 'Get', signature: 'ss', body: [INTERFACE, 'Version'], reply: variantReply('s'), advances: false, valid: true };
      case 3:
        return { ...base, member: 'Introspect', signature: '', body: [], reply: xmlReply(INTERFACE), advances: false, valid: true };
      case 4:
        return { ...base, member: 'NextTick', signature: 's', body: ['x'], errors: [ERRORS.InvalidArgs], advances: false, valid: false };
      case 5:
        return { ...base, member: 'GetPhiTimestamp', signature: 's', body: ['no::way'], errors: [ERRORS.InvalidAgentId], advances: true, valid: false };
      default:
        return { ...base, member: this.pick(['Foo', 'Nexttick', 'Hello']), signature: '', body: [], errors: [ERRORS.UnknownMethod], advances: false, valid: false };
    }
  }

  // ---- properties -----------------------------------------------------------------------

  private propertiesCase(): Omit<Case, 'noReply'> {
    const base = { cat: 'properties', path: OBJECT_PATH, iface: PROPERTIES_INTERFACE, advances: false, logs: false, valid: false };
    const standard = [PROPERTIES_INTERFACE, PEER_INTERFACE, INTROSPECTABLE_INTERFACE];
    const odd = () => {
      const i = this.pick([...standard, 'org.nope', 'org.jesternet.chronos', this.hostileString()]);
      // '' means "the object's own interface": not odd.
      return i === '' || i === INTERFACE ? 'org.nope' : i;
    };
    const badProp = () => this.pick(['tick', 'TICK', 'Nope', '', 'Tick\u0001', 'Tick ', 'Versions', this.hostileString()]);
    const r = this.int(0, 5);
    if (r === 0) {
      return { ...base, member: 'Get', signature: 'ss', body: [this.pick([INTERFACE, '']), badProp()], errors: [ERRORS.UnknownProperty] };
    }
    if (r === 1) {
      return { ...base, member: 'Get', signature: 'ss', body: [odd(), this.pick(['Tick', 'Version', 'Nope'])], errors: [ERRORS.UnknownInterface, ERRORS.UnknownProperty] };
    }
    if (r === 2) {
      const i = odd();
      return standard.includes(i)
        ? { ...base, member: 'GetAll', signature: 's', body: [i], reply: emptyPropsReply, errors: [ERRORS.UnknownInterface], valid: true }
        : { ...base, member: 'GetAll', signature: 's', body: [i], errors: [ERRORS.UnknownInterface] };
    }
    const value = this.pick([new Variant('t', 2n ** 64n - 1n), new Variant('t', 0n), new Variant('s', 'x'), new Variant('u', 7), new Variant('as', ['a']), new Variant('v', new Variant('t', 1n))]);
    if (r === 3) {
      return { ...base, member: 'Set', signature: 'ssv', body: [this.pick([INTERFACE, '']), this.pick(['Tick', 'Version']), value], errors: [ERRORS.PropertyReadOnly] };
    }
    if (r === 4) {
      return { ...base, member: 'Set', signature: 'ssv', body: [INTERFACE, badProp(), value], errors: [ERRORS.UnknownProperty, ERRORS.PropertyReadOnly] };
    }
    return { ...base, member: 'Set', signature: 'ssv', body: [odd(), 'Tick', value], errors: [ERRORS.UnknownInterface, ERRORS.UnknownProperty, ERRORS.PropertyReadOnly] };
  }
}

function bodyBytes(body: unknown[]): number {
  let n = 0;
  for (const x of body) n += typeof x === 'string' ? bytes(x) : Buffer.isBuffer(x) ? x.length : Array.isArray(x) ? x.length * 8 : 8;
  return n;
}

/** Splits a signature into complete types. */
export function splitSignature(sig: string): string[] {
  const out: string[] = [];
  let i = 0;
  const one = (): string => {
    const start = i;
    const c = sig[i++];
    if (c === 'a') one();
    else if (c === '(') {
      while (sig[i] !== ')') one();
      i++;
    } else if (c === '{') {
      while (sig[i] !== '}') one();
      i++;
    }
    return sig.slice(start, i);
  };
  while (i < sig.length) out.push(one());
  return out;
}

// ---- reply checks --------------------------------------------------------------------

const sigIs = (want: string, got: string) => (got === want ? null : `signature '${got}', expected '${want}'`);

function tickReply(advancing: boolean): Check {
  return (sig, body) => sigIs('t', sig) ?? (typeof body[0] !== 'bigint' ? 'tick is not a u64' : advancing && (body[0] as bigint) < 1n ? 'NextTick returned 0' : null);
}

function stampReply(id: string): Check {
  return (sig, body) => {
    const bad = sigIs('s', sig);
    if (bad) return bad;
    try {
      const p = parsePhiTimestamp(body[0] as string);
      return p.agentId === id ? null : `stamp carries agent ${JSON.stringify(p.agentId)}`;
    } catch (err) {
      return `not a Phi timestamp: ${(err as Error).message}`;
    }
  };
}

function logReply(id: string, action: string, status: string, details: string): Check {
  return (sig, body) => {
    const bad = sigIs('s', sig);
    if (bad) return bad;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(body[0] as string) as Record<string, unknown>;
    } catch {
      return 'LogEvent reply is not JSON';
    }
    const keys = Object.keys(rec).join(',');
    if (keys !== (details === '' ? 'timestamp,action,status' : 'timestamp,action,status,details')) return `keys ${keys}`;
    if (rec.action !== action || rec.status !== status || (details !== '' && rec.details !== details)) return 'fields not echoed exactly';
    const bad2 = stampReply(id)('s', [rec.timestamp]);
    return bad2;
  };
}

const emptyReply: Check = (sig, body) => (sig === '' && body.length === 0 ? null : `expected an empty reply, got '${sig}'`);
const machineIdReply: Check = (sig, body) => sigIs('s', sig) ?? (/^[0-9a-f]{32}$/.test(String(body[0])) ? null : 'not a machine id');

function xmlReply(mustHave: string | null): Check {
  return (sig, body) => {
    const bad = sigIs('s', sig);
    if (bad) return bad;
    const x = String(body[0]);
    if (!x.startsWith('<!DOCTYPE node')) return 'not introspection XML';
    if (mustHave && !x.includes(`<interface name="${mustHave}">`)) return `XML lacks ${mustHave}`;
    if (!mustHave && !/<node name="[^"]+"\/>/.test(x)) return 'ancestor XML lacks its child node';
    return null;
  };
}

function variantReply(type: string): Check {
  return (sig, body) => sigIs('v', sig) ?? ((body[0] as { signature?: string })?.signature === type ? null : `variant of type ${(body[0] as { signature?: string })?.signature}`);
}

const propsReply: Check = (sig, body) => {
  const bad = sigIs('a{sv}', sig);
  if (bad) return bad;
  const p = body[0] as Record<string, { signature: string }>;
  return p.Tick?.signature === 't' && p.Version?.signature === 's' && Object.keys(p).length === 2 ? null : `properties ${Object.keys(p).join(',')}`;
};

const emptyPropsReply: Check = (sig, body) => sigIs('a{sv}', sig) ?? (Object.keys(body[0] as object).length === 0 ? null : 'expected no properties');

// ---- error text checks ---------------------------------------------------------------

const STACK = [/\n/, /\bat [\w.$<>]+ \(/, /\bat (?:\/|node:|file:)/, /\.(?:js|cjs|mjs|ts):\d/, /\b[A-Z]\w*Error: /, /internal error/i];

/** Why an error text is not an acceptable one-line message, or null. */
export function badErrorText(text: string): string | null {
  for (const re of STACK) if (re.test(text)) return `error text matches ${re}: ${JSON.stringify(text.slice(0, 200))}`;
  return null;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/;
const KNOWN = new Set<string>(Object.values(ERRORS));

/** Whether an error name is a proper D-Bus error name we know (ours or the standard ones). */
export function namedError(name: string): boolean {
  return NAME.test(name) && (KNOWN.has(name) || name.startsWith('org.freedesktop.DBus.Error.'));
}

export { BUS_NAME };
