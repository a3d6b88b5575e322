// Load from N ChronosClient connections: each keeps a batch of calls in flight (a mix of
// NextTick, GetPhiTimestamp and LogEvent, all of which advance the clock), reports every
// outcome with the epoch it was sent in, and can be paused (no new batches) and drained.
import { ChronosClient, ChronosError, parsePhiTimestamp } from '../../../src/client/index.js';

export type Method = 'NextTick' | 'GetPhiTimestamp' | 'LogEvent';

export interface Outcome {
  client: number;
  method: Method;
  /** The load's epoch when the call was sent (the test bumps it around faults). */
  epoch: number;
  tick?: bigint;
  error?: ChronosError;
}

export interface LoadOptions {
  inFlight: number;
  rand: () => number;
  /** Mix in stamps and log events (default true); NextTick only otherwise. */
  mix?: boolean;
  onOutcome(o: Outcome): void;
}

const AGENTS = ['FAULTS', 'agent-ä', 'Ω-7', '客户端', 'x:y'];

export class Load {
  epoch = 0;
  calls = 0;
  private open = true;
  private stopped = false;
  private gate: Promise<void> = Promise.resolve();
  private release: () => void = () => {};
  private inflight = 0;
  private drainWaiters: Array<() => void> = [];
  private workers: Promise<void>[] = [];

  constructor(
    readonly clients: ChronosClient[],
    private readonly o: LoadOptions,
  ) {}

  start(): void {
    this.workers = this.clients.map((c, i) => this.worker(c, i));
  }

  /** Stops sending new batches; in-flight calls still settle. */
  pause(): void {
    if (!this.open) return;
    this.open = false;
    this.gate = new Promise((r) => (this.release = r));
  }

  resume(): void {
    if (this.open) return;
    this.open = true;
    this.release();
  }

  /** Pauses and waits until every call sent has settled. */
  async drain(): Promise<void> {
    this.pause();
    if (this.inflight === 0) return;
    await new Promise<void>((r) => this.drainWaiters.push(r));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.resume();
    await Promise.all(this.workers);
  }

  private async worker(c: ChronosClient, idx: number): Promise<void> {
    while (!this.stopped) {
      await this.gate;
      if (this.stopped) break;
      const epoch = this.epoch;
      const batch: Promise<void>[] = [];
      for (let j = 0; j < this.o.inFlight; j++) batch.push(this.one(c, idx, epoch));
      await Promise.all(batch);
      // Yield so a pause between batches takes effect and timers run.
      await new Promise((r) => setImmediate(r));
    }
  }

  private async one(c: ChronosClient, client: number, epoch: number): Promise<void> {
    const r = this.o.mix === false ? 0 : this.o.rand();
    const method: Method = r < 0.7 ? 'NextTick' : r < 0.85 ? 'GetPhiTimestamp' : 'LogEvent';
    const agent = AGENTS[Math.floor(this.o.rand() * AGENTS.length)] as string;
    this.inflight++;
    this.calls++;
    try {
      let tick: bigint;
      if (method === 'NextTick') {
        tick = await c.nextTick();
      } else if (method === 'GetPhiTimestamp') {
        const p = parsePhiTimestamp(await c.getPhiTimestamp(agent));
        if (p.agentId !== agent) throw new Error(`stamp carries agent ${p.agentId}, sent ${agent}`);
        tick = p.tick;
      } else {
        const rec = JSON.parse(await c.logEvent(agent, 'fault-load', 'ok', `client ${client}`)) as { timestamp: string; details: string };
        if (rec.details !== `client ${client}`) throw new Error('LogEvent echoed other details');
        tick = parsePhiTimestamp(rec.timestamp).tick;
      }
      this.o.onOutcome({ client, method, epoch, tick });
    } catch (err) {
      // A reply that fails the client-side checks is reported as an error of its own kind.
      const e = err instanceof ChronosError ? err : new ChronosError('Failed', `bad reply: ${(err as Error).message}`, 'test.BadReply');
      this.o.onOutcome({ client, method, epoch, error: e });
    } finally {
      this.inflight--;
      if (this.inflight === 0 && this.drainWaiters.length) {
        const w = this.drainWaiters;
        this.drainWaiters = [];
        for (const f of w) f();
      }
    }
  }
}

/** Short label of an error outcome for tallies: the D-Bus name, or the client's code. */
export const errorLabel = (e: ChronosError): string => e.dbusName ?? `client:${e.code}`;

export function tally(map: Record<string, number>, key: string, n = 1): void {
  map[key] = (map[key] ?? 0) + n;
}
