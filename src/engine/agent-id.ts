// Validation of the strings callers hand us. Each check returns a one-line reason or null.

export const AGENT_ID_MAX_BYTES = 255;
export const FIELD_MAX_BYTES = 255;
export const DETAILS_MAX_BYTES = 64 * 1024;

// C0 and C1 controls, DEL, and lone surrogates (not valid UTF-8, so not transmissible).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function describeControl(s: string): string {
  const m = CONTROL.exec(s);
  const cp = (m?.[0] ?? '\0').codePointAt(0) ?? 0;
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

export function agentIdProblem(id: string): string | null {
  if (typeof id !== 'string') return 'agent id must be a string';
  if (id.length === 0) return 'agent id is empty';
  if (LONE_SURROGATE.test(id)) return 'agent id is not valid UTF-8';
  const bytes = Buffer.byteLength(id, 'utf8');
  if (bytes > AGENT_ID_MAX_BYTES) return `agent id is ${bytes} bytes, the limit is ${AGENT_ID_MAX_BYTES}`;
  if (CONTROL.test(id)) return `agent id holds the control character ${describeControl(id)}`;
  if (id.includes('::')) return "agent id must not contain '::'";
  if (id.startsWith(':') || id.endsWith(':')) return "agent id must not start or end with ':'";
  return null;
}

export function fieldProblem(name: string, value: string, maxBytes: number): string | null {
  if (typeof value !== 'string') return `${name} must be a string`;
  if (LONE_SURROGATE.test(value)) return `${name} is not valid UTF-8`;
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > maxBytes) return `${name} is ${bytes} bytes, the limit is ${maxBytes}`;
  return null;
}
