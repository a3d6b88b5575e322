// One entry point, busybox-style: the invoked name picks the mode (chronosd-dbus: daemon,
// chronos-ctl: CLI); under any other name the first argument does (`chronos daemon ...`,
// `chronos ctl ...`). In a pkg SEA binary, process.argv0 is the name as invoked, even through
// a symlink; user arguments start at argv[2] both there and under node.
import path from 'node:path';
import { NODE_VERSION, VERSION } from './version.js';
import { modeFor } from './dispatch.js';

const USAGE = `usage: chronos daemon [options]     run the D-Bus daemon (same as chronosd-dbus)
       chronos ctl <command> [...]  talk to the daemon (same as chronos-ctl)
       chronos --version
`;

async function main(): Promise<number> {
  // Under plain node, argv0 is "node": the script's own name (argv[1]) decides then.
  const invoked = path.basename(process.argv0) === 'node' ? (process.argv[1] ?? '') : process.argv0;
  const { mode, args } = modeFor(invoked, process.argv.slice(2));
  switch (mode) {
    case 'daemon':
      return (await import('./modes/daemon.js')).runDaemon(args);
    case 'ctl':
      return (await import('./modes/ctl.js')).runCtl(args);
    case 'version':
      process.stdout.write(`chronos ${VERSION} (node ${NODE_VERSION})\n`);
      return 0;
    default: {
      const help = args[0] === '--help' || args[0] === '-h' || args[0] === 'help';
      (help ? process.stdout : process.stderr).write(USAGE);
      return help ? 0 : 2;
    }
  }
}

process.on('unhandledRejection', (err) => {
  process.stderr.write(`chronos: internal error: ${String((err as Error)?.message ?? err).split('\n')[0]}\n`);
  process.exit(70);
});

main().then(
  (code) => {
    process.exitCode = code;
    // The daemon and watch close their handles; anything still pending is not ours to wait for.
    if (code !== 0 || process.env.CHRONOS_EXIT_IMMEDIATELY) setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`chronos: internal error: ${String((err as Error)?.message ?? err).split('\n')[0]}\n`);
    process.exit(70);
  },
);
