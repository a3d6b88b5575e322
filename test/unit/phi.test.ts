import { describe, expect, it } from 'vitest';
import { formatPhiTimestamp, formatUtcNs, parsePhiTimestamp, PhiFormatError } from '../../src/engine/phi.js';
import { agentIdProblem, fieldProblem } from '../../src/engine/agent-id.js';
import { WallClock } from '../../src/engine/wall-clock.js';
import { formatEvent } from '../../src/engine/event.js';
import { MAX_TICK } from '../../src/engine/tick-file.js';

describe('Phi timestamps', () => {
  it('formats the reference example exactly', () => {
    const utcNs = BigInt(Date.UTC(2025, 9, 19, 21, 28, 37)) * 1_000_000n + 882295849n;
    expect(formatPhiTimestamp({ utcNs, agentId: 'CLAUDE-A', tick: 4n })).toBe(
      '2025-10-19T21:28:37.882295849Z::CLAUDE-A::TICK-0000000004',
    );
  });

  it('pads the tick to ten digits and widens beyond', () => {
    expect(formatPhiTimestamp({ utcNs: 0n, agentId: 'a', tick: 0n })).toBe('1970-01-01T00:00:00.000000000Z::a::TICK-0000000000');
    expect(formatPhiTimestamp({ utcNs: 0n, agentId: 'a', tick: MAX_TICK })).toBe(
      '1970-01-01T00:00:00.000000000Z::a::TICK-18446744073709551615',
    );
  });

  it('round-trips random timestamps, agent ids and ticks', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);
    const alphabet = ['a', 'Z', '9', '-', '_', '.', ':', 'é', '日', '😀', ' ', '/'];
    for (let i = 0; i < 2000; i++) {
      const utcNs = BigInt(Math.floor(rnd() * 253402300799)) * 1_000_000_000n + BigInt(Math.floor(rnd() * 1e9));
      let agentId = '';
      const len = 1 + Math.floor(rnd() * 20);
      while (agentId.length < len) agentId += alphabet[Math.floor(rnd() * alphabet.length)];
      agentId = agentId.replace(/:+/g, ':').replace(/^:|:$/g, 'x');
      const tick = BigInt(Math.floor(rnd() * 2 ** 53)) * BigInt(1 + Math.floor(rnd() * 2000));
      if (agentIdProblem(agentId)) continue;
      const text = formatPhiTimestamp({ utcNs, agentId, tick });
      expect(parsePhiTimestamp(text)).toEqual({ utcNs, agentId, tick });
      expect(formatPhiTimestamp(parsePhiTimestamp(text))).toBe(text);
    }
  });

  it.each([
    ['', /two '::'/],
    ['2025-10-19T21:28:37.882295849Z::A', /two '::'/],
    ['2025-10-19T21:28:37.882Z::A::TICK-0000000004', /UTC part/],
    ['2025-10-19 21:28:37.882295849Z::A::TICK-0000000004', /UTC part/],
    ['2025-02-30T21:28:37.882295849Z::A::TICK-0000000004', /no such date/],
    ['2025-10-19T24:00:00.000000000Z::A::TICK-0000000004', /no such date/],
    ['2025-10-19T21:28:37.882295849Z::A::TICK-4', /tick part/],
    ['2025-10-19T21:28:37.882295849Z::A::TICK-18446744073709551616', /2\^64-1/],
    ['2025-10-19T21:28:37.882295849Z::A::TICK-000000000004', /padding/],
    ['2025-10-19T21:28:37.882295849Z::A::B::TICK-0000000004', /'::'/],
    ['2025-10-19T21:28:37.882295849Z::::TICK-0000000004', /empty/],
    ['2025-10-19T21:28:37.882295849Z::A\u0007::TICK-0000000004', /control/],
  ])('rejects %j', (text, why) => {
    expect(() => parsePhiTimestamp(text)).toThrow(PhiFormatError);
    expect(() => parsePhiTimestamp(text)).toThrow(why);
  });
});

describe('agent ids and fields', () => {
  it('allows 1 to 255 bytes of UTF-8, inclusive', () => {
    expect(agentIdProblem('a')).toBeNull();
    expect(agentIdProblem('a'.repeat(255))).toBeNull();
    expect(agentIdProblem('a'.repeat(256))).toMatch(/256 bytes/);
    expect(agentIdProblem('é'.repeat(127) + 'a')).toBeNull(); // 255 bytes
    expect(agentIdProblem('é'.repeat(128))).toMatch(/256 bytes/);
    expect(agentIdProblem('')).toMatch(/empty/);
  });

  it('refuses C0 and C1 controls and DEL, allows what follows them', () => {
    for (const cp of [0x00, 0x01, 0x0a, 0x1f, 0x7f, 0x80, 0x9f]) {
      expect(agentIdProblem(`a${String.fromCodePoint(cp)}b`)).toMatch(/control character U\+/);
    }
    for (const cp of [0x20, 0x7e, 0xa0, 0xff, 0x2028, 0x1f600]) {
      expect(agentIdProblem(`a${String.fromCodePoint(cp)}b`)).toBeNull();
    }
  });

  it("refuses '::' and a leading or trailing ':'; a single inner ':' is fine", () => {
    expect(agentIdProblem('a::b')).toMatch(/'::'/);
    expect(agentIdProblem(':a')).toMatch(/start or end/);
    expect(agentIdProblem('a:')).toMatch(/start or end/);
    expect(agentIdProblem('host:agent')).toBeNull();
  });

  it('refuses lone surrogates', () => {
    expect(agentIdProblem('a\ud800b')).toMatch(/UTF-8/);
    expect(fieldProblem('details', 'x\udc00', 100)).toMatch(/UTF-8/);
  });

  it('field limits are inclusive', () => {
    expect(fieldProblem('action', 'a'.repeat(255), 255)).toBeNull();
    expect(fieldProblem('action', 'a'.repeat(256), 255)).toMatch(/action is 256 bytes/);
    expect(fieldProblem('details', 'x'.repeat(65536), 65536)).toBeNull();
    expect(fieldProblem('details', 'x'.repeat(65537), 65536)).toMatch(/65537/);
  });
});

describe('WallClock', () => {
  function fake(steps: Array<[number, bigint]>) {
    let i = 0;
    let cur = steps[0]!;
    return {
      advance: () => (cur = steps[Math.min(++i, steps.length - 1)]!),
      time: { wallMs: () => cur[0], monoNs: () => cur[1] },
    };
  }

  it('uses the monotonic clock below the millisecond', () => {
    const f = fake([
      [1000, 0n],
      [1000, 123_456n],
    ]);
    const c = new WallClock(f.time);
    expect(c.nowNs()).toBe(1_000_000_000n);
    f.advance();
    expect(c.nowNs()).toBe(1_000_123_456n);
  });

  it('never goes backwards when the wall clock steps back, and follows it forward again', () => {
    const f = fake([
      [5000, 0n],
      [5000, 500_000n],
      [2000, 600_000n], // stepped back three seconds
      [2001, 1_600_000n],
      [5001, 3_001_000_000n], // caught up
      [9000, 3_002_000_000n], // stepped forward
    ]);
    const c = new WallClock(f.time);
    const seen: bigint[] = [c.nowNs()];
    for (let i = 0; i < 5; i++) {
      f.advance();
      seen.push(c.nowNs());
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]! >= seen[i - 1]!).toBe(true);
    expect(seen[2]).toBe(seen[1]); // held
    expect(seen[4]).toBe(5_001_000_000n);
    expect(seen[5]).toBe(9_000_000_000n);
  });

  it('stays within the wall clock millisecond when the monotonic clock drifts', () => {
    const f = fake([
      [1000, 0n],
      [1001, 5_000_000n], // monotonic ran 5 ms in one wall ms
    ]);
    const c = new WallClock(f.time);
    c.nowNs();
    f.advance();
    expect(c.nowNs()).toBe(1_001_000_000n);
  });

  it('calibrate anchors at the next millisecond edge', () => {
    let wall = 1000;
    let mono = 0n;
    const c = new WallClock({
      wallMs: () => {
        mono += 300_000n; // each look at the wall clock takes 0.3 ms
        if (mono >= 700_000n) wall = 1001;
        return wall;
      },
      monoNs: () => mono,
    });
    c.calibrate();
    // Anchored at 1001 ms when the monotonic clock read 0.9 ms. 0.25 ms later, plus the
    // 0.3 ms the reading itself takes, the monotonic clock reads 1.45 ms: 0.55 ms past the edge.
    mono += 250_000n;
    expect(c.nowNs()).toBe(1_001_550_000n);
  });

  it('formats nine fractional digits', () => {
    expect(formatUtcNs(new WallClock().nowNs())).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/);
  });
});

describe('event records', () => {
  it('keeps the reference key order and leaves out empty details', () => {
    expect(formatEvent('T', 'a', 's', '')).toBe('{"timestamp":"T","action":"a","status":"s"}');
    expect(formatEvent('T', 'a', 's', 'd')).toBe('{"timestamp":"T","action":"a","status":"s","details":"d"}');
  });

  it('is valid JSON whatever the strings hold', () => {
    const nasty = ['"', '\\', '\n\r\t', '\u0000\u001f', '\u2028\u2029', '日本語😀', '</script>', '\ud800', '{"a":1}'];
    for (const s of nasty) {
      const json = formatEvent('T', s, s, s);
      expect(JSON.parse(json)).toEqual({ timestamp: 'T', action: s, status: s, details: s });
      expect(json).not.toMatch(/\n/);
    }
  });
});
