// Running a citty command the way scripts need it: --help on stdout with exit 0, usage errors
// as one line on stderr with a fixed exit code, unknown flags and extra arguments refused, and
// no JS stack traces ever.

import { renderUsage, runCommand, type ArgsDef, type CommandDef } from 'citty';

export type Exit = number;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface RunOptions {
  prog: string;
  usageExit: number;
  /** Maps a command's own error to an exit code (after printing it); undefined: not ours. */
  onError: (err: unknown) => number | undefined;
}

const ANSI = /\u001b\[[0-9;]*m/g;

function resolve<T>(v: unknown): T {
  return (typeof v === 'function' ? (v as () => T)() : v) as T;
}

function camel(s: string): string {
  return s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Finds the command that argv selects (following subcommands), and the argv left for it. */
function select(cmd: CommandDef<ArgsDef>, argv: string[]): { cmd: CommandDef<ArgsDef>; rest: string[]; chain: CommandDef<ArgsDef>[] } {
  const chain = [cmd];
  let rest = argv;
  for (;;) {
    const subs = resolve<Record<string, CommandDef<ArgsDef>> | undefined>(chain[chain.length - 1]!.subCommands);
    if (!subs) break;
    const idx = rest.findIndex((a) => !a.startsWith('-'));
    if (idx < 0) break;
    const name = rest[idx] as string;
    const sub = subs[name];
    if (!sub) break;
    chain.push(sub);
    rest = rest.slice(idx + 1);
  }
  return { cmd: chain[chain.length - 1]!, rest, chain };
}

/** Refuses options a command does not declare and positionals beyond the ones it declares. */
export function checkArgs(cmd: CommandDef<ArgsDef>, argv: string[]): void {
  const defs = resolve<ArgsDef>(cmd.args) ?? {};
  const known = new Set<string>();
  let positionals = 0;
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === 'positional') {
      positionals++;
      continue;
    }
    known.add(name);
    known.add(camel(name));
    for (const a of [(def as { alias?: string | string[] }).alias ?? []].flat()) known.add(a);
  }
  const stringOpts = new Set(Object.entries(defs).filter(([, d]) => d.type === 'string' || d.type === 'enum').map(([n]) => n));
  let seen = 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      seen += argv.length - i - 1;
      break;
    }
    if (a.startsWith('-') && a !== '-') {
      const name = a.replace(/^--?(no-)?/, '').split('=')[0] as string;
      if (!known.has(name)) throw new UsageError(`unknown option '${a.split('=')[0]}'`);
      if (stringOpts.has(name) && !a.includes('=')) {
        if (i + 1 >= argv.length) throw new UsageError(`option '${a}' needs a value`);
        i++;
      }
      continue;
    }
    seen++;
  }
  const subs = resolve<Record<string, unknown> | undefined>(cmd.subCommands);
  if (!subs && seen > positionals) throw new UsageError(`unexpected argument '${argv.filter((a) => !a.startsWith('-')).slice(positionals)[0]}'`);
}

/** Prints a usage error as scripts expect it (one line, then a pointer to --help); returns `code`. */
export function usageError(prog: string, msg: string, code: Exit): Exit {
  process.stderr.write(`${prog}: ${msg.replace(ANSI, '').replace(/[\r\n]+/g, ' ')}\n`);
  process.stderr.write(`Try '${prog} --help' for more information.\n`);
  return code;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function runCitty(root: CommandDef<any>, argv: string[], opts: RunOptions): Promise<Exit> {
  const usageLine = (msg: string) => usageError(opts.prog, msg, opts.usageExit);
  const before = argv.indexOf('--');
  const flags = before < 0 ? argv : argv.slice(0, before);
  if (flags.includes('--help') || flags.includes('-h')) {
    const { chain } = select(root, argv);
    const cmd = chain[chain.length - 1]!;
    const parent = chain.length > 1 ? chain[chain.length - 2] : undefined;
    process.stdout.write(`${(await renderUsage(cmd, parent)).replace(ANSI, '')}\n`);
    return 0;
  }
  try {
    const { cmd, rest } = select(root, argv);
    checkArgs(cmd, rest);
    const subs = resolve<Record<string, unknown> | undefined>(cmd.subCommands);
    if (subs) {
      const word = rest.find((a) => !a.startsWith('-'));
      throw new UsageError(word === undefined ? 'no command given' : `unknown command '${word}'`);
    }
    // The selected command runs alone: its result is the exit code.
    const { result } = await runCommand(cmd, { rawArgs: rest });
    return typeof result === 'number' ? result : 0;
  } catch (err) {
    const mapped = opts.onError(err);
    if (mapped !== undefined) return mapped;
    if (err instanceof UsageError || (err as Error)?.name === 'CLIError') return usageLine((err as Error).message);
    process.stderr.write(`${opts.prog}: internal error: ${String((err as Error)?.message ?? err).split('\n')[0]}\n`);
    return 70;
  }

}
