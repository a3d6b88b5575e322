// The shipped unit's exposure, as `systemd-analyze security --offline=yes` scores it
// (through scripts/check-security.sh, which fails above 1.0), recorded with the directives
// it still counts against the unit.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROFILE, ROOT, SEED, sh } from './helpers/env.js';
import { SectionRecorder } from './helpers/report.js';

const UNIT = path.join(ROOT, 'packaging', 'systemd', 'chronosd.service');
const SCRIPT = path.join(ROOT, 'scripts', 'check-security.sh');
const rec = new SectionRecorder('exposure', 'systemd-analyze security --offline=yes packaging/systemd/chronosd.service', PROFILE, SEED);

rec.recordFailures();
afterAll(() => rec.finish());

const haveAnalyze = sh('sh', ['-c', 'command -v systemd-analyze']).code === 0;

describe.skipIf(!haveAnalyze || !fs.existsSync(UNIT))(`unit exposure${haveAnalyze ? '' : ' — skipped: systemd-analyze is not installed (package systemd)'}`, () => {
  it('scripts/check-security.sh scores the unit at or below 1.0', () => {
    const r = sh('sh', [SCRIPT, UNIT]);
    const m = /exposure ([0-9.]+) /.exec(r.stdout + r.stderr);
    const version = sh('systemd-analyze', ['--version']).stdout.split('\n')[0] ?? '';
    if (m) rec.max('exposure', Number(m[1]));
    rec.figures['exposure (lower is better; systemd calls <= 1.0 "SAFE")'] = m ? Number(m[1]) : 'no score';
    rec.figures['systemd-analyze'] = version.trim();
    rec.figures['directives still counted against the unit'] = (r.stdout.match(/^✗ \S+/gm) ?? []).map((l) => l.slice(2)).join(', ') || 'none';
    expect(m, r.stdout + r.stderr).not.toBeNull();
    expect(r.code, r.stderr).toBe(0);
  });
});
