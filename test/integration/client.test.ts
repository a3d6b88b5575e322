// The client library as applications use it: the packaged entry point, typed errors.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChronosClient, ChronosError } from '../../src/client/index.js';
import { ROOT, run, startBus, startDaemon, stopDaemon, tempDir, type TestBus } from '../helpers/bus.js';

let bus: TestBus;
beforeAll(async () => {
  bus = await startBus();
});
afterAll(async () => {
  await bus?.stop();
});

const codeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (e instanceof ChronosError ? e.code : `not a ChronosError: ${String(e)}`));

describe('packaged library', () => {
  it('package.json exports a CommonJS bundle with type declarations that works from plain node', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const entry = path.join(ROOT, pkg.exports['.'].require);
    expect(fs.existsSync(path.join(ROOT, pkg.exports['.'].types))).toBe(true);
    const d = await startDaemon(bus.address, path.join(tempDir(), 'tick.dat'));
    try {
      const script = `const c=require(${JSON.stringify(entry)});(async()=>{const x=await c.ChronosClient.connect({address:${JSON.stringify(bus.address)}});const t=await x.nextTick();const s=await x.getPhiTimestamp('LIB');console.log(typeof t, t, c.parsePhiTimestamp(s).tick);await x.close();})()`;
      const r = run(process.execPath, ['-e', script]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('bigint 1n 2n\n');
    } finally {
      await stopDaemon(d);
    }
  });
});

describe('typed errors', () => {
  it('NotRunning: no socket, or no owner of the name', async () => {
    expect(await codeOf(ChronosClient.connect({ address: 'unix:path=/nonexistent/bus' }))).toBe('NotRunning');
    const c = await ChronosClient.connect({ address: bus.address });
    expect(await codeOf(c.getTick())).toBe('NotRunning');
    await c.close();
    expect(await codeOf(c.getTick())).toBe('NotRunning');
  });

  it('Timeout: the daemon owns the name but does not answer', async () => {
    const d = await startDaemon(bus.address, path.join(tempDir(), 'tick.dat'));
    const c = await ChronosClient.connect({ address: bus.address, timeoutMs: 300 });
    d.proc.kill('SIGSTOP');
    expect(await codeOf(c.nextTick())).toBe('Timeout');
    d.proc.kill('SIGCONT');
    await c.close();
    await stopDaemon(d);
  });

  it('NotRunning for calls in flight when the daemon dies', async () => {
    const d = await startDaemon(bus.address, path.join(tempDir(), 'tick.dat'));
    const c = await ChronosClient.connect({ address: bus.address, timeoutMs: 10_000 });
    d.proc.kill('SIGSTOP');
    const pending = codeOf(c.nextTick());
    d.proc.kill('SIGKILL');
    await d.exited;
    // The bus answers NoReply for a call whose destination vanished.
    expect(['NotRunning', 'Timeout']).toContain(await pending);
    await c.close();
  });

  it('onEvent unsubscribes', async () => {
    const d = await startDaemon(bus.address, path.join(tempDir(), 'tick.dat'));
    const c = await ChronosClient.connect({ address: bus.address });
    try {
      const seen: string[] = [];
      const off = await c.onEvent((j) => seen.push(j));
      await c.logEvent('E', 'one', 'ok');
      await expect.poll(() => seen.length).toBe(1);
      off();
      await c.logEvent('E', 'two', 'ok');
      // The daemon sends each signal right after its reply: one more round trip and the
      // signal of 'two' has been delivered (to nobody).
      await c.getTick();
      const third: string[] = [];
      await c.onEvent((j) => third.push(j));
      await c.logEvent('E', 'three', 'ok');
      await expect.poll(() => third.length).toBe(1);
      expect(seen).toHaveLength(1);
      expect(JSON.parse(third[0]!).action).toBe('three');
    } finally {
      await c.close();
      await stopDaemon(d);
    }
  });
});

describe('Shutdown through third-party clients (root)', () => {
  it.each([
    ['busctl', (a: string) => ['busctl', [`--address=${a}`, 'call', 'org.jesternet.Chronos', '/org/jesternet/Chronos', 'org.jesternet.Chronos', 'Shutdown']]],
    ['dbus-send', (a: string) => ['dbus-send', [`--bus=${a}`, '--print-reply', '--dest=org.jesternet.Chronos', '/org/jesternet/Chronos', 'org.jesternet.Chronos.Shutdown']]],
    ['gdbus', (a: string) => ['gdbus', ['call', '-a', a, '-d', 'org.jesternet.Chronos', '-o', '/org/jesternet/Chronos', '-m', 'org.jesternet.Chronos.Shutdown']]],
  ] as Array<[string, (a: string) => [string, string[]]]>)('%s', async (_name, cmd) => {
    const file = path.join(tempDir(), 'tick.dat');
    const d = await startDaemon(bus.address, file);
    const [bin, args] = cmd(bus.address);
    const r = run(bin, args);
    expect(r.code, r.stderr).toBe(0);
    expect(await d.exited).toBe(0);
    expect(d.stderr()).toMatch(/stopped \(Shutdown called\)/);
  });
});
