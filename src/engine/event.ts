// LogEvent records: one JSON object per event, in the reference daemon's key order.

export interface EventRecord {
  timestamp: string;
  action: string;
  status: string;
  details?: string;
}

/** Always valid JSON, whatever the strings hold; `details` is left out when empty. */
export function formatEvent(timestamp: string, action: string, status: string, details: string): string {
  const record: EventRecord = { timestamp, action, status };
  if (details !== '') record.details = details;
  return JSON.stringify(record);
}
