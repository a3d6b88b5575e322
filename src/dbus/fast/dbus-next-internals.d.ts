// Types for the two dbus-next 0.10.2 internals the fast path uses for its fallback: the stream
// parser (the exact decoder dbus-next runs on its socket) and the body conversion the
// connection applies before emitting 'message'.
declare module 'dbus-next/lib/message.js' {
  import type { EventEmitter } from 'node:events';
  export interface RawMessage {
    serial: number;
    type: number;
    flags: number;
    [field: string]: unknown;
  }
  export function unmarshalMessages(
    stream: EventEmitter & { read(n: number, encoding?: null): Buffer | null },
    onMessage: (msg: RawMessage) => void,
    opts?: object,
  ): void;
  export function marshall(msg: object): [Buffer, number[]];
}

declare module 'dbus-next/lib/marshall-compat.js' {
  export function messageToJsFmt<T extends object>(msg: T): T & { body: unknown[]; signature: string };
  export function marshallMessage(msg: object): [Buffer, number[]];
}

declare module 'dbus-next/lib/validators.js' {
  export function isBusNameValid(name: unknown): boolean;
  export function isObjectPathValid(path: unknown): boolean;
  export function isInterfaceNameValid(name: unknown): boolean;
  export function isMemberNameValid(name: unknown): boolean;
}
