// chronos-ctl: the command line for scripts and operators. Thin: every call goes through
// the client library. Output is the value alone (or one JSON object with --json); errors
// are one line on stderr and a documented exit code.

import { defineCommand, renderUsage, type ArgsDef, type CommandDef } from 'citty';
import { ChronosClient, ChronosError, parsePhiTimestamp, type ConnectOptions } from '../client/index.js';
import { chooseBus } from '../dbus/bus.js';
import { NODE_VERSION, VERSION } from '../version.js';
import { runCitty, usageError, UsageError, type Exit } from './cli-runtime.js';

/** Exit codes of chronos-ctl, documented in --help, README and chronos-ctl(1). */
export const CTL_EXIT = {
  ok: 0,
  daemonError: 1,
  usage: 2,
  unreachable: 3,
  accessDenied: 4,
} as const;

const PROG = 'chronos-ctl';

interface Globals {
  json: boolean;
  session: boolean;
  system: boolean;
  address?: string;
  timeoutMs: number;
}

const GLOBAL_ARGS = {
  json: { type: 'boolean', description: 'Print one JSON object instead of plain text' },
  session: { type: 'boolean', description: 'Use the session bus (also: CHRONOS_USE_SESSION_BUS=1)' },
  system: { type: 'boolean', description: 'Use the system bus (the default)' },
  address: { type: 'string', valueHint: 'ADDRESS', description: 'Use the bus at this D-Bus address' },
  timeout: { type: 'string', valueHint: 'MS', description: 'Give up after MS milliseconds (default 25000)' },
} as const satisfies ArgsDef;

/** Global options may stand anywhere before `--`; they are taken out before citty parses. */
export function extractGlobals(argv: string[]): { globals: Globals; rest: string[] } {
  const g: Globals = { json: false, session: false, system: false, timeoutMs: 25_000 };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`option '${flag}' needs a value`);
      return v;
    };
    switch (flag) {
      case '--json':
        g.json = true;
        break;
      case '--session':
        g.session = true;
        break;
      case '--system':
        g.system = true;
        break;
      case '--address':
        g.address = value();
        break;
      case '--timeout': {
        const v = value();
        if (!/^[0-9]{1,9}$/.test(v) || Number(v) === 0) throw new UsageError(`--timeout takes a positive number of milliseconds, not '${v}'`);
        g.timeoutMs = Number(v);
        break;
      }
      default:
        rest.push(a);
    }
  }
  if (g.session && g.system) throw new UsageError('--system and --session exclude each other');
  return { globals: g, rest };
}

let globals: Globals = { json: false, session: false, system: false, timeoutMs: 25_000 };

const out = (line: string) => process.stdout.write(`${line}\n`);

/** JSON with bigints as exact numbers. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `\u0000BIG${v}\u0000` : v)).replace(
    /"\\u0000BIG(\d+)\\u0000"/g,
    '$1',
  );
}

async function withClient<T>(fn: (c: ChronosClient) => Promise<T>): Promise<T> {
  const opts: ConnectOptions = { timeoutMs: globals.timeoutMs, bus: chooseBus(globals) };
  if (globals.address) opts.address = globals.address;
  const client = await ChronosClient.connect(opts);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

function cmd<const A extends ArgsDef>(
  name: string,
  description: string,
  args: A,
  run: (args: Record<string, string>) => Promise<void>,
): CommandDef<ArgsDef> {
  return defineCommand({
    meta: { name, description },
    args: { ...args, ...GLOBAL_ARGS },
    run: async ({ args: parsed }) => {
      await run(parsed as unknown as Record<string, string>);
      return CTL_EXIT.ok;
    },
  }) as CommandDef<ArgsDef>;
}

const agentArg = { 'agent-id': { type: 'positional', description: 'Agent id (1-255 bytes, no control characters, no "::")', required: true } } as const;

const commands: Record<string, CommandDef<ArgsDef>> = {
  ping: cmd('ping', "Check that the daemon answers; print its version and tick", {}, async () => {
    const r = await withClient((c) => c.ping());
    if (globals.json) out(toJson({ ok: true, version: r.version, tick: r.tick }));
    else out(`chronosd-dbus ${r.version} is running, tick ${r.tick}`);
  }),
  tick: cmd('tick', 'Print the current tick (changes nothing)', {}, async () => {
    const t = await withClient((c) => c.getTick());
    out(globals.json ? toJson({ tick: t }) : String(t));
  }),
  next: cmd('next', 'Advance the clock and print the new, durable tick', {}, async () => {
    const t = await withClient((c) => c.nextTick());
    out(globals.json ? toJson({ tick: t }) : String(t));
  }),
  stamp: cmd('stamp', 'Advance the clock and print a Phi timestamp for AGENT-ID', agentArg, async (a) => {
    const s = await withClient((c) => c.getPhiTimestamp(a['agent-id'] as string));
    if (!globals.json) {
      out(s);
      return;
    }
    const p = parsePhiTimestamp(s);
    out(toJson({ timestamp: s, utc: s.slice(0, s.indexOf('::')), agent_id: p.agentId, tick: p.tick }));
  }),
  log: cmd(
    'log',
    'Advance the clock, log an event, and print its JSON record',
    {
      ...agentArg,
      action: { type: 'positional', description: 'What was done (at most 255 bytes)', required: true },
      status: { type: 'positional', description: 'How it ended (at most 255 bytes)', required: true },
      details: { type: 'positional', description: 'Free text (at most 64 KiB)', required: false, default: '' },
    },
    async (a) => {
      const json = await withClient((c) => c.logEvent(a['agent-id'] as string, a.action as string, a.status as string, a.details ?? ''));
      out(json);
    },
  ),
  watch: cmd('watch', 'Print each EventLogged record as one JSON line until interrupted', {}, async () => {
    await withClient(async (c) => {
      await c.onEvent((json) => out(json));
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        void c.whenClosed().then(() => resolve());
      });
    });
  }),
  shutdown: cmd('shutdown', 'Stop the daemon (root or the daemon user only)', {}, async () => {
    await withClient((c) => c.shutdown());
    out(globals.json ? toJson({ ok: true, shutdown: true }) : 'chronosd-dbus is shutting down');
  }),
  version: cmd('version', 'Print the version of chronos-ctl (no daemon needed)', {}, async () => {
    if (globals.json) out(toJson({ name: PROG, version: VERSION, node: NODE_VERSION }));
    else out(`${PROG} ${VERSION} (node ${NODE_VERSION})`);
  }),
};

const EXIT_HELP = `Exit codes: 0 success, 1 the daemon answered with an error, 2 usage error, 3 daemon not reachable (no bus, no daemon, timeout), 4 access denied.`;

export const ctlCommand = defineCommand({
  meta: { name: PROG, version: VERSION, description: `Talk to the Chronos tick daemon over D-Bus. ${EXIT_HELP}` },
  args: GLOBAL_ARGS,
  subCommands: {
    ...commands,
    help: cmd('help', 'Show this help, or the help of COMMAND', { command: { type: 'positional', required: false, description: 'A command' } }, async (a) => {
      const sub = a.command ? commands[a.command] : undefined;
      if (a.command && !sub) throw new UsageError(`unknown command '${a.command}'`);
      out((await renderUsage(sub ?? (ctlCommand as CommandDef<ArgsDef>), sub ? (ctlCommand as CommandDef<ArgsDef>) : undefined)).replace(/\u001b\[[0-9;]*m/g, ''));
    }),
  },
});

function exitFor(err: ChronosError): Exit {
  switch (err.code) {
    case 'NotRunning':
    case 'Timeout':
      return CTL_EXIT.unreachable;
    case 'AccessDenied':
      return CTL_EXIT.accessDenied;
    default:
      return CTL_EXIT.daemonError;
  }
}

export async function runCtl(argv: string[]): Promise<number> {
  let rest: string[];
  try {
    ({ globals, rest } = extractGlobals(argv));
  } catch (err) {
    return usageError(PROG, (err as Error).message, CTL_EXIT.usage);
  }
  if (rest.length === 0 || (rest[0] === '--' && rest.length === 1)) {
    if (argv.includes('--help') || argv.includes('-h')) rest = ['--help'];
    else return usageError(PROG, 'no command given', CTL_EXIT.usage);
  }
  return runCitty(ctlCommand as CommandDef<ArgsDef>, rest, {
    prog: PROG,
    usageExit: CTL_EXIT.usage,
    onError: (err) => {
      if (!(err instanceof ChronosError)) return undefined;
      const code = exitFor(err);
      process.stderr.write(`${PROG}: ${err.message.replace(/[\r\n]+/g, ' ')}${err.dbusName ? ` (${err.dbusName})` : ''}\n`);
      if (globals.json) out(toJson({ ok: false, error: err.code, dbus_error: err.dbusName ?? null, message: err.message, exit: code }));
      return code;
    },
  });
}
