// The daemon's fast path: which calls are hot, and the switch to turn it off.
//
// CHRONOS_FAST_PATH=0 in the daemon's environment leaves every message to dbus-next (for
// comparison in the benchmark, or as a way out should the fast path ever misbehave).

import type { Message as DBusMessage, MessageBus } from 'dbus-next';
import { INTERFACE, OBJECT_PATH } from '../interface.js';
import type { HotCall } from './codec.js';
import { FastPath } from './wire.js';

export { FastPath } from './wire.js';
export type { HotCall } from './codec.js';

/** NextTick and GetTick on the Chronos object, with or without the interface named. */
export function isChronosHotCall(call: HotCall): boolean {
  return (
    call.path === OBJECT_PATH &&
    (call.interface === undefined || call.interface === INTERFACE) &&
    (call.member === 'NextTick' || call.member === 'GetTick')
  );
}

export function attachChronosFastPath(
  bus: MessageBus,
  handler: (msg: DBusMessage) => boolean,
  env: NodeJS.ProcessEnv = process.env,
): FastPath | null {
  if (env.CHRONOS_FAST_PATH === '0') return null;
  return FastPath.attach(bus, { handler, isHot: isChronosHotCall });
}
