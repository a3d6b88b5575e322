// Phi timestamps: `2025-10-19T21:28:37.882295849Z::CLAUDE-A::TICK-0000000004`.
// UTC with nine fractional digits, the agent id, and the tick zero-padded to ten digits
// (more digits when the tick needs them).

import { agentIdProblem } from './agent-id.js';
import { MAX_TICK } from './tick-file.js';

export interface PhiTimestamp {
  /** UTC nanoseconds since the Unix epoch. */
  utcNs: bigint;
  agentId: string;
  tick: bigint;
}

export class PhiFormatError extends Error {
  override readonly name = 'PhiFormatError';
}

const NS_PER_S = 1_000_000_000n;
const MIN_UTC_NS = 0n; // 1970-01-01
const MAX_UTC_NS = 253402300800n * NS_PER_S - 1n; // 9999-12-31T23:59:59.999999999Z

const pad = (n: number, w: number) => String(n).padStart(w, '0');

/** Formats UTC nanoseconds as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`. */
export function formatUtcNs(utcNs: bigint): string {
  if (utcNs < MIN_UTC_NS || utcNs > MAX_UTC_NS) throw new PhiFormatError('time is outside 1970..9999');
  const secs = utcNs / NS_PER_S;
  const frac = utcNs % NS_PER_S;
  const d = new Date(Number(secs) * 1000);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}` +
    `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}` +
    `.${frac.toString().padStart(9, '0')}Z`
  );
}

export function formatTick(tick: bigint): string {
  return `TICK-${tick.toString().padStart(10, '0')}`;
}

export function formatPhiTimestamp(p: PhiTimestamp): string {
  const problem = agentIdProblem(p.agentId);
  if (problem) throw new PhiFormatError(problem);
  if (p.tick < 0n || p.tick > MAX_TICK) throw new PhiFormatError('tick is outside 0..2^64-1');
  return `${formatUtcNs(p.utcNs)}::${p.agentId}::${formatTick(p.tick)}`;
}

const UTC_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{9})Z$/;
const TICK_RE = /^TICK-(\d{10,20})$/;

/** Parses a Phi timestamp; throws PhiFormatError naming what is wrong. */
export function parsePhiTimestamp(text: string): PhiTimestamp {
  if (typeof text !== 'string') throw new PhiFormatError('a Phi timestamp must be a string');
  const first = text.indexOf('::');
  const last = text.lastIndexOf('::');
  if (first < 0 || first === last) {
    throw new PhiFormatError("expected UTC::AGENT::TICK-NNNNNNNNNN (two '::' separators)");
  }
  const utc = text.slice(0, first);
  const agentId = text.slice(first + 2, last);
  const tickPart = text.slice(last + 2);

  const m = UTC_RE.exec(utc);
  if (!m) throw new PhiFormatError(`bad UTC part '${utc.slice(0, 40)}': expected YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(ms);
  if (
    year < 1970 ||
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw new PhiFormatError(`bad UTC part '${utc}': no such date or time`);
  }
  const utcNs = BigInt(ms / 1000) * NS_PER_S + BigInt(m[7] as string);

  const problem = agentIdProblem(agentId);
  if (problem) throw new PhiFormatError(problem);

  const t = TICK_RE.exec(tickPart);
  if (!t) throw new PhiFormatError(`bad tick part '${tickPart.slice(0, 40)}': expected TICK- and at least ten digits`);
  const digits = t[1] as string;
  const tick = BigInt(digits);
  if (tick > MAX_TICK) throw new PhiFormatError('tick exceeds 2^64-1');
  // Only the canonical padding round-trips: ten digits, or exactly as many as the tick needs.
  if (digits.length > 10 && digits.startsWith('0')) {
    throw new PhiFormatError('tick has more zero padding than ten digits');
  }
  return { utcNs, agentId, tick };
}
