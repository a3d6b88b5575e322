// Which mode the invoked name and arguments select (busybox-style dispatch).
import path from 'node:path';

export type Mode = 'daemon' | 'ctl' | 'usage' | 'version';

export function modeFor(argv0: string, args: string[]): { mode: Mode; args: string[] } {
  const name = path.basename(argv0).replace(/\.(c?js|exe)$/, '');
  if (name === 'chronosd-dbus' || name === 'chronosd') return { mode: 'daemon', args };
  if (name === 'chronos-ctl') return { mode: 'ctl', args };
  const [first, ...rest] = args;
  if (first === 'daemon') return { mode: 'daemon', args: rest };
  if (first === 'ctl') return { mode: 'ctl', args: rest };
  if (first === '--version' || first === 'version') return { mode: 'version', args: rest };
  return { mode: 'usage', args };
}
