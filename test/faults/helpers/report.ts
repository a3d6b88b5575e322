// The suite's figures: each test file records one section (measured counters, figures and
// notes) into test/faults/results/last.json in its afterAll, even when a test failed, and
// RELIABILITY.md is rewritten from that file every time. Files run one after the other, so
// the last one to finish leaves the complete table.
import { afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import type { Profile } from './env.js';
import { ROOT } from './env.js';

export const RESULTS_FILE = path.join(ROOT, 'test', 'faults', 'results', 'last.json');
export const REPORT_FILE = path.join(ROOT, 'RELIABILITY.md');

/** The counters of the summary table; a section records the ones it measures. */
export interface Counters {
  faults?: number;
  calls?: number;
  acked?: number;
  repeated?: number;
  lost?: number;
  restarts?: number;
  hostile?: number;
  crashes?: number;
  /** Largest RSS after/before ratio measured. */
  rssGrowth?: number;
  /** systemd-analyze security exposure of the unit. */
  exposure?: number;
}

export interface Section {
  title: string;
  date: string;
  profile: Profile;
  seed: number;
  /** The vitest run that wrote it (pid of the vitest main process and its start time). */
  runId: string;
  durationMs: number;
  failedTests: string[];
  counters: Counters;
  figures: Record<string, unknown>;
  notes: string[];
}

interface Results {
  updated: string;
  sections: Record<string, Section>;
}

export const SECTION_ORDER: Array<[string, string]> = [
  ['crash-loop', 'crash loop'],
  ['disk', 'disk faults'],
  ['slow-disk', 'slow disk'],
  ['bus', 'bus faults'],
  ['hostile', 'hostile input'],
  ['access', 'access control'],
  ['signals', 'signals'],
  ['exposure', 'unit exposure'],
];

export function runId(): string {
  // Test files run in forks of the vitest process: its pid and start time name this run.
  let start = '';
  try {
    start = fs.readFileSync(`/proc/${process.ppid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19] ?? '';
  } catch {
    // not Linux /proc
  }
  return `${process.ppid}@${start}`;
}

function load(): Results {
  try {
    const r = JSON.parse(fs.readFileSync(RESULTS_FILE, 'utf8')) as Results;
    if (r && typeof r === 'object' && r.sections) return r;
  } catch {
    // first run, or a damaged file: start afresh
  }
  return { updated: '', sections: {} };
}

const json = (v: unknown) =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2);

export function recordSection(key: string, s: Section): void {
  const r = load();
  r.sections[key] = s;
  r.updated = new Date().toISOString();
  fs.mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  const tmp = `${RESULTS_FILE}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${json(r)}\n`);
  fs.renameSync(tmp, RESULTS_FILE);
  const md = render(r);
  fs.writeFileSync(`${REPORT_FILE}.${process.pid}.tmp`, md);
  fs.renameSync(`${REPORT_FILE}.${process.pid}.tmp`, REPORT_FILE);
}

const ROWS: Array<[keyof Counters, string, 'sum' | 'max']> = [
  ['faults', 'Faults injected (kill -9, disk faults, bus kills, signals)', 'sum'],
  ['calls', 'Calls made (all callers, including refused and hostile ones)', 'sum'],
  ['acked', 'Acknowledged ticks', 'sum'],
  ['repeated', 'Repeated ticks', 'sum'],
  ['lost', 'Lost acknowledged ticks', 'sum'],
  ['restarts', 'Daemon restarts', 'sum'],
  ['hostile', 'Hostile inputs tried', 'sum'],
  ['crashes', 'Daemon crashes (exits nobody asked for)', 'sum'],
  ['rssGrowth', 'Largest RSS growth (measured run / warm-up)', 'max'],
  ['exposure', '`systemd-analyze security` exposure of chronosd.service', 'max'],
];

function fmt(key: keyof Counters, v: number | undefined): string {
  if (v === undefined) return '–';
  if (key === 'rssGrowth') return `${v.toFixed(3)}x`;
  if (key === 'exposure') return v.toFixed(1);
  return v.toLocaleString('en-US');
}

function fmtFigure(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : String(Math.round(v * 1000) / 1000);
  if (typeof v === 'string') return v;
  return `\`${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))}\``;
}

export function render(r: Results): string {
  const present = SECTION_ORDER.filter(([k]) => r.sections[k]);
  const sections = present.map(([k, label]) => [k, label, r.sections[k] as Section] as const);
  const runs = new Set(sections.map(([, , s]) => s.runId));
  const profiles = new Set(sections.map(([, , s]) => s.profile));
  let md = '# Chronos reliability figures\n\n';
  md +=
    'Written by the fault suite (`npm run test:faults`, test/faults/); do not edit by hand. ' +
    'Every number below is a count or a measurement of the last run of each section; the raw ' +
    'numbers are in `test/faults/results/last.json`. The full profile runs the counts of issue 5 ' +
    '(`CHRONOS_FAULTS_PROFILE=full`, the default outside CI); the CI profile ' +
    '(`CHRONOS_FAULTS_PROFILE=ci`, the default when `CI=true`, and what `scripts/test.sh` uses) runs fewer.\n\n';
  md += `Last written: ${r.updated}. Profile: ${[...profiles].join(' and ') || 'none'}`;
  md += runs.size > 1 ? `; the sections come from ${runs.size} different runs (see their dates).\n\n` : ', one run.\n\n';

  md += '| Measure | Total |' + sections.map(([, label]) => ` ${label} |`).join('') + '\n';
  md += '|---|---:|' + sections.map(() => '---:|').join('') + '\n';
  for (const [key, label, agg] of ROWS) {
    const vals = sections.map(([, , s]) => s.counters[key]);
    const nums = vals.filter((v): v is number => typeof v === 'number');
    const total = nums.length === 0 ? undefined : agg === 'sum' ? nums.reduce((a, b) => a + b, 0) : Math.max(...nums);
    md += `| ${label} | ${fmt(key, total)} |` + vals.map((v) => ` ${fmt(key, v)} |`).join('') + '\n';
  }
  md += '\n"–": the section does not measure it.\n\n';

  md += '## Runs\n\n| Section | Date (UTC) | Profile | Seed | Duration | Failed tests |\n|---|---|---|---:|---:|---|\n';
  for (const [, label, s] of sections) {
    md += `| ${label} | ${s.date} | ${s.profile} | ${s.seed} | ${(s.durationMs / 1000).toFixed(1)} s | ${s.failedTests.length ? s.failedTests.join('; ') : 'none'} |\n`;
  }
  md += '\n';

  for (const [, label, s] of sections) {
    md += `## ${label[0]!.toUpperCase()}${label.slice(1)}: ${s.title}\n\n`;
    const figs = Object.entries(s.figures);
    if (figs.length) {
      md += '| Figure | Value |\n|---|---|\n';
      for (const [k, v] of figs) md += `| ${k} | ${fmtFigure(v).replace(/\|/g, '\\|')} |\n`;
      md += '\n';
    }
    for (const n of s.notes) md += `- ${n}\n`;
    if (s.notes.length) md += '\n';
  }
  return md;
}

/** Collects a file's counters and failures; call finish() from afterAll. */
export class SectionRecorder {
  readonly started = Date.now();
  readonly counters: Counters = {};
  readonly figures: Record<string, unknown> = {};
  readonly notes: string[] = [];
  readonly failedTests: string[] = [];

  constructor(
    readonly key: string,
    readonly title: string,
    readonly profile: Profile,
    readonly seed: number,
  ) {}

  /** Records the name of every failing test of the calling file (call at its top level). */
  recordFailures(): void {
    afterEach((ctx) => {
      if (ctx.task.result?.state === 'fail') this.failedTests.push(ctx.task.name);
    });
  }

  add(k: keyof Counters, n: number): void {
    this.counters[k] = (this.counters[k] ?? 0) + n;
  }

  max(k: keyof Counters, n: number): void {
    this.counters[k] = Math.max(this.counters[k] ?? n, n);
  }

  finish(): void {
    recordSection(this.key, {
      title: this.title,
      date: new Date(this.started).toISOString(),
      profile: this.profile,
      seed: this.seed,
      runId: runId(),
      durationMs: Date.now() - this.started,
      failedTests: this.failedTests,
      counters: this.counters,
      figures: this.figures,
      notes: this.notes,
    });
  }
}
