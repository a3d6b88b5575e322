#!/usr/bin/env node
// Chronos benchmark: our daemon against the C libdbus ceiling, in one run, on a private bus.
//
//   npm run bench                 full run (about 4-6 minutes on 2 vCPU), updates BENCHMARKS.md
//   npm run bench -- --quick      short run (about 1-2 minutes); BENCHMARKS.md only with --write
//
// Options:
//   --quick            fewer rounds, smaller counts, 200k calls for the memory figure
//   --rounds N         rounds per figure (default 5, quick 3)
//   --write / --no-write   force / suppress updating BENCHMARKS.md (results JSON is always written)
//   --profile DIR      run the daemons with --cpu-prof, profiles into DIR
//   --keep             keep the temporary folder (bus socket, tick files, logs)
//   --skip-jitless, --skip-stock, --skip-client, --skip-cli, --skip-memory   leave a section out
//   --skip-c-durable   no C durable service (bench/c/durable-echo.c); --skip-c-variants   only its plain form
//
// What runs (see issue 4 and ../shared/NOTES.md section 9):
//   - a private dbus-daemon (own config, --address=unix:path=<tmp>/bus); the host buses are never used
//   - the C libdbus echo service `dbus-test-tool echo` (package dbus-tests, installed if missing)
//   - bench/c/durable-echo.c, compiled here (gcc, pkg-config, libdbus-1-dev, installed if missing):
//     a C libdbus service with our durability (group commit, the tick file written and fdatasynced
//     as the engine does before any answer), plain, with a flusher thread, and with O_DIRECT: what
//     C itself reaches on this bus and this disk when it persists each tick
//   - our daemon, bundled from src/main.ts by this script (same esbuild flags as build.mjs), durable,
//     its tick file on a real disk folder (never tmpfs); once with the JIT, once with --jitless
//   - `dbus-test-tool spam --message-stdin` feeding a NextTick call marshalled by dbus-next,
//     to the C service and to ours, at 1, 10 and 100 calls in flight
//   - our client library (one call at a time, 100 in flight), chronos-ctl vs busctl, RSS, sizes
// Every figure is measured in each of R rounds; each round measures the C service and ours back to
// back, so the ratios are paired; the table reports medians.
// Correctness is checked on the way: after the load GetTick equals the number of NextTick calls made,
// and the tick file holds that number.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(root, "package.json"));

const argv = process.argv.slice(2);
const flag = (n) => argv.includes(n);
const opt = (n, d) => {
  const i = argv.indexOf(n);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
};
const QUICK = flag("--quick");
const ROUNDS = Number(opt("--rounds", QUICK ? 3 : 5));
const WRITE_MD = flag("--write") || (!QUICK && !flag("--no-write"));
const PROFILE_DIR = opt("--profile", null);
const KEEP = flag("--keep");
const QUEUES = [1, 10, 100];
// Calls per spam run, by queue depth; big enough that a run takes about a second or more.
const SPAM_COUNT = QUICK ? { 1: 3000, 10: 10000, 100: 20000 } : { 1: 5000, 10: 25000, 100: 50000 };
const CLIENT_COUNT = QUICK ? { one: 2000, inflight: 10000 } : { one: 5000, inflight: 30000 };
const CLI_RUNS = QUICK ? 15 : 40;
const MEMORY_CALLS = QUICK ? 200_000 : 1_000_000;

const BUS_NAME = "org.jesternet.Chronos";
const OBJ_PATH = "/org/jesternet/Chronos";
const IFACE = "org.jesternet.Chronos";
const ECHO_NAME = "org.jesternet.ChronosBench.Echo";
// The C durable service's forms (bench/c/durable-echo.c): flags and bus names.
const C_DURABLE = {
  cDurable: { flags: [], name: "org.jesternet.ChronosBench.Durable", label: "C durable, one thread (our design in C)" },
  cPipeline: { flags: ["--pipeline"], name: "org.jesternet.ChronosBench.DurablePipeline", label: "C durable, flusher thread" },
  cDirect: { flags: ["--direct"], name: "org.jesternet.ChronosBench.DurableDirect", label: "C durable, O_DIRECT sector (another file format)" },
};

const t00 = Date.now();
const log = (m) => process.stderr.write(`[bench ${((Date.now() - t00) / 1000).toFixed(1).padStart(5)}s] ${m}\n`);
const die = (m) => {
  log(`error: ${m}`);
  cleanup();
  process.exit(1);
};
const median = (xs) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e9;

// ---------------------------------------------------------------------------------------------
// Child mode: the client-library load runs in its own process (fresh heap, no bench noise).
if (process.argv[2] === "--child-client") {
  await childClient(JSON.parse(process.argv[3]));
  process.exit(0);
}


// ---------------------------------------------------------------------------------------------
// Temporary folder on a real disk (the tick file must see real fdatasync costs).
function fsTypeOf(p) {
  const mounts = fs
    .readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f.length > 2)
    .map(([dev, mnt, type]) => ({ dev, mnt: mnt.replace(/\\040/g, " "), type }));
  const real = fs.realpathSync(p);
  let best = { mnt: "", type: "?" };
  for (const m of mounts) {
    if ((real === m.mnt || real.startsWith(m.mnt.endsWith("/") ? m.mnt : m.mnt + "/")) && m.mnt.length >= best.mnt.length) best = m;
  }
  return best;
}
const MEMFS = new Set(["tmpfs", "ramfs", "overlay", "devtmpfs"]);
let workBase = os.tmpdir();
if (MEMFS.has(fsTypeOf(workBase).type)) {
  workBase = path.join(root, ".cache", "bench");
  fs.mkdirSync(workBase, { recursive: true });
}
const work = fs.mkdtempSync(path.join(workBase, "chronos-bench-"));
const diskFs = fsTypeOf(work);
if (MEMFS.has(diskFs.type)) die(`no disk folder found (${work} is ${diskFs.type})`);

const children = new Set();
function cleanup() {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {}
  }
  children.clear();
  if (!KEEP) fs.rmSync(work, { recursive: true, force: true });
  else log(`kept ${work}`);
}
process.on("SIGINT", () => die("interrupted"));

// ---------------------------------------------------------------------------------------------
// Tools.
function which(cmd) {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}
if (!which("dbus-test-tool")) {
  log("dbus-test-tool missing: apt-get install -y dbus-tests");
  const r = spawnSync("apt-get", ["install", "-y", "dbus-tests"], { stdio: "inherit" });
  if (r.status !== 0 || !which("dbus-test-tool")) die("could not install dbus-tests (need root and the Debian mirror)");
}
for (const t of ["dbus-daemon", "busctl"]) if (!which(t)) die(`${t} not found`);

const firstLine = (cmd, a) => {
  const r = spawnSync(cmd, a, { encoding: "utf8" });
  return ((r.stdout || "") + (r.stderr || "")).split("\n")[0].trim();
};
const dpkgVersion = (p) => spawnSync("dpkg-query", ["-W", "-f=${Version}", p], { encoding: "utf8" }).stdout || "?";

// ---------------------------------------------------------------------------------------------
// Our daemon: bundle src/main.ts fresh (build.mjs's options, scripts/app-bundle.mjs) so the bench measures the source.
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
let bundle = null;
let libBundle = null;
const haveDaemon = fs.existsSync(path.join(root, "src", "main.ts")) && fs.existsSync(path.join(root, "src", "dbus"));
if (haveDaemon) {
  const esbuild = await import("esbuild");
  bundle = path.join(work, "chronos.cjs");
  const { appBundleOptions } = await import(path.join(root, "scripts", "app-bundle.mjs"));
  await esbuild.build(appBundleOptions(root, path.join(root, "src", "main.ts"), bundle));
  if (fs.existsSync(path.join(root, "src", "client", "index.ts"))) {
    libBundle = path.join(work, "client.cjs");
    await esbuild.build({
      entryPoints: [path.join(root, "src", "client", "index.ts")],
      outfile: libBundle,
      bundle: true,
      platform: "node",
      format: "cjs",
      target: "node20",
      external: ["x11", "usocket"],
      nodePaths: [path.join(root, "node_modules")],
      define: { __CHRONOS_VERSION__: JSON.stringify(pkg.version), __CHRONOS_NODE_VERSION__: "process.version" },
      logLevel: "warning",
    });
  }
  log(`bundled src/main.ts -> ${bundle}${libBundle ? " and src/client/index.ts" : ""}`);
} else {
  log("src/main.ts or src/dbus/ not there yet: measuring the C echo service only");
}

// ---------------------------------------------------------------------------------------------
// The private bus.
const sock = path.join(work, "bus");
const busAddress = `unix:path=${sock}`;
fs.writeFileSync(
  path.join(work, "bus.conf"),
  `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>${busAddress}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`,
);
// Children see only the private bus.
const baseEnv = { ...process.env, DBUS_SESSION_BUS_ADDRESS: busAddress, DBUS_SYSTEM_BUS_ADDRESS: busAddress };
delete baseEnv.NODE_OPTIONS;

function start(cmd, a, { env = baseEnv, name = cmd, stdio = ["ignore", "pipe", "pipe"] } = {}) {
  const c = spawn(cmd, a, { env, stdio });
  c.label = name;
  c.out = "";
  c.err = "";
  c.stdout?.on("data", (d) => (c.out += d));
  c.stderr?.on("data", (d) => (c.err += d));
  c.exited = new Promise((r) => c.on("exit", (code, sig) => r({ code, sig })));
  children.add(c);
  c.exited.then(() => children.delete(c));
  return c;
}
async function waitFor(pred, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(20);
  }
  die(`timed out waiting for ${what}`);
}

const busd = start("dbus-daemon", [`--config-file=${path.join(work, "bus.conf")}`, `--address=${busAddress}`, "--nofork", "--print-address"], {
  name: "dbus-daemon",
});
await waitFor(() => busd.out.includes("\n"), 5000, "dbus-daemon");

const dbus = require("dbus-next");
const { Message } = dbus;
const { marshallMessage } = require("dbus-next/lib/marshall-compat");
const ctl = dbus.sessionBus({ busAddress });
ctl.on("error", (e) => log(`control connection error: ${e.message}`));
await new Promise((r, j) => {
  ctl.once("connect", r);
  ctl.once("error", j);
});
async function callCtl(dest, pathName, iface, member, signature = "", body = []) {
  const reply = await ctl.call(new Message({ destination: dest, path: pathName, interface: iface, member, signature, body }));
  return reply.body;
}
const hasOwner = async (n) => (await callCtl("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner", "s", [n]))[0];
const getTick = async () => BigInt((await callCtl(BUS_NAME, OBJ_PATH, IFACE, "GetTick"))[0]);

// The messages spam sends: a NextTick call marshalled by dbus-next (serial is replaced by libdbus).
function marshalledCall(dest) {
  const m = new Message({ serial: 1, destination: dest, path: OBJ_PATH, interface: IFACE, member: "NextTick" });
  const [buf] = marshallMessage(m);
  const f = path.join(work, `call-${dest}.bin`);
  fs.writeFileSync(f, buf);
  return f;
}
const msgEcho = marshalledCall(ECHO_NAME);
const msgOurs = marshalledCall(BUS_NAME);

const echo = start("dbus-test-tool", ["echo", `--name=${ECHO_NAME}`], { name: "echo" });
await waitFor(() => hasOwner(ECHO_NAME), 5000, "the C echo service");

// The C durable service: built from bench/c/durable-echo.c, one process per form, each with its
// own tick file (checked at the end like ours).
const cForms = flag("--skip-c-durable") ? [] : flag("--skip-c-variants") ? ["cDurable"] : Object.keys(C_DURABLE);
const cProcs = {};
if (cForms.length) {
  const haveCc = () => which("cc") && spawnSync("pkg-config", ["--exists", "dbus-1"]).status === 0;
  if (!haveCc()) {
    log("C compiler or libdbus headers missing: apt-get install -y gcc pkg-config libdbus-1-dev");
    const r = spawnSync("apt-get", ["install", "-y", "gcc", "pkg-config", "libdbus-1-dev"], { stdio: "inherit" });
    if (r.status !== 0 || !haveCc()) die("could not install gcc, pkg-config, libdbus-1-dev (need root and the Debian mirror)");
  }
  const exe = path.join(work, "durable-echo");
  const pc = spawnSync("pkg-config", ["--cflags", "--libs", "dbus-1"], { encoding: "utf8" }).stdout.trim().split(/\s+/);
  const cc = spawnSync("cc", ["-O2", "-Wall", "-pthread", "-o", exe, path.join(root, "bench", "c", "durable-echo.c"), ...pc], { encoding: "utf8" });
  if (cc.status !== 0) die(`cannot compile bench/c/durable-echo.c: ${cc.stderr}`);
  for (const form of cForms) {
    const c = C_DURABLE[form];
    c.tickFile = path.join(work, `state-${form}`, "tick");
    fs.mkdirSync(path.dirname(c.tickFile), { recursive: true });
    c.msg = marshalledCall(c.name);
    cProcs[form] = start(exe, [`--address=${busAddress}`, `--name=${c.name}`, `--tick-file=${c.tickFile}`, ...c.flags], { name: form });
    await waitFor(() => hasOwner(c.name), 5000, `the C durable service (${form})`);
  }
}
log(`private bus ${busAddress}; C echo service up; work folder ${work} (${diskFs.type} on ${diskFs.dev})`);

/** One spam run; returns calls/s (wall time of the spam process, connect included). */
async function spam(dest, msgFile, count, queue) {
  const fd = fs.openSync(msgFile, "r");
  const t0 = now();
  const c = start("dbus-test-tool", ["spam", `--dest=${dest}`, `--count=${count}`, `--queue=${queue}`, "--message-stdin"], {
    name: "spam",
    stdio: [fd, "pipe", "pipe"],
  });
  const { code, sig } = await c.exited;
  const dt = now() - t0;
  fs.closeSync(fd);
  if (code !== 0) die(`spam to ${dest} (queue ${queue}) failed: ${code ?? sig} ${c.err.trim()}`);
  return count / dt;
}

// ---------------------------------------------------------------------------------------------
// Our daemon's lifecycle.
// The production flags: NODE_OPTIONS exactly as the shipped unit sets it (--jitless, which
// MemoryDenyWriteExecute=yes needs, and the heap cap).
const unitNodeOptions = (() => {
  const unit = fs.readFileSync(path.join(root, "packaging", "systemd", "chronosd.service"), "utf8");
  const m = /^Environment="?NODE_OPTIONS=([^"\n]*)"?$/m.exec(unit);
  if (!m || !m[1].includes("--jitless")) die("packaging/systemd/chronosd.service sets no NODE_OPTIONS with --jitless");
  return m[1].trim();
})();
const modes = {
  jit: { nodeOptions: "", tickFile: path.join(work, "state-jit", "tick"), calls: 0n, starts: 0 },
  jitless: { nodeOptions: unitNodeOptions, tickFile: path.join(work, "state-jitless", "tick"), calls: 0n, starts: 0 },
  // Memory: the daemon as the unit runs it (its NODE_OPTIONS: --jitless and the heap cap), and
  // the same without them.
  memory: { nodeOptions: unitNodeOptions, tickFile: path.join(work, "state-memory", "tick"), calls: 0n, starts: 0 },
  memoryJit: { nodeOptions: "", tickFile: path.join(work, "state-memory-jit", "tick"), calls: 0n, starts: 0 },
  // The same daemon with its fast path switched off (CHRONOS_FAST_PATH=0): stock dbus-next for
  // every message. Measured in the same rounds to show what the fast path gains.
  stock: { nodeOptions: "", env: { CHRONOS_FAST_PATH: "0" }, tickFile: path.join(work, "state-stock", "tick"), calls: 0n, starts: 0 },
  stockJitless: { nodeOptions: "--jitless", env: { CHRONOS_FAST_PATH: "0" }, tickFile: path.join(work, "state-stock-jitless", "tick"), calls: 0n, starts: 0 },
};
for (const form of Object.keys(C_DURABLE)) modes[form] = { c: true, calls: 0n };
const failures = [];
const check = (ok, what) => {
  if (!ok) {
    failures.push(what);
    log(`CHECK FAILED: ${what}`);
  }
  return ok;
};

async function startDaemon(mode) {
  const m = modes[mode];
  const env = { ...baseEnv, ...(m.env ?? {}) };
  const nodeArgs = [];
  if (m.nodeOptions) env.NODE_OPTIONS = m.nodeOptions;
  if (PROFILE_DIR) nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${path.resolve(PROFILE_DIR)}`, `--cpu-prof-name=${mode}-${m.starts}-${Date.now()}.cpuprofile`);
  const d = start(process.execPath, [...nodeArgs, bundle, "daemon", "--address", busAddress, "--tick-file", m.tickFile], { env, name: `daemon-${mode}` });
  const t0 = now();
  await Promise.race([
    waitFor(async () => d.err.includes("\n") && (await hasOwner(BUS_NAME)), 10000, `daemon (${mode}) to own ${BUS_NAME}`),
    d.exited.then(({ code, sig }) => {
      if (!d.stopping) die(`daemon (${mode}) exited unexpectedly: ${code ?? sig}\n${d.err}`);
    }),
  ]);
  d.startSec = now() - t0;
  m.starts++;
  // After a restart the clock must continue from the durable tick.
  const t = await getTick();
  check(t === m.calls, `${mode}: GetTick after start is ${t}, expected ${m.calls} (restart #${m.starts})`);
  return d;
}
async function stopDaemon(d, mode) {
  const m = modes[mode];
  const t = await getTick();
  check(t === m.calls, `${mode}: GetTick after the load is ${t}, expected ${m.calls} NextTick calls`);
  d.stopping = true;
  d.kill("SIGTERM");
  const r = await Promise.race([d.exited, sleep(5000).then(() => null)]);
  if (!r) {
    d.kill("SIGKILL");
    check(false, `${mode}: daemon did not exit within 5 s of SIGTERM`);
  } else check(r.code === 0, `${mode}: daemon exit status ${r.code ?? r.sig} after SIGTERM\n${d.err}`);
  const text = fs.readFileSync(m.tickFile, "latin1");
  check(text === `${m.calls}\n`, `${mode}: tick file holds ${JSON.stringify(text)}, expected "${m.calls}\\n"`);
  await waitFor(async () => !(await hasOwner(BUS_NAME)), 5000, `${BUS_NAME} to be released`);
}
/** The disk's floor for one durable call at a time: in-place pwrite + fdatasync, as the engine does. */
function fdatasyncRate(n = QUICK ? 500 : 1500) {
  const f = path.join(work, "fdatasync-probe");
  const fd = fs.openSync(f, "w");
  const t0 = now();
  for (let i = 0; i < n; i++) {
    fs.writeSync(fd, Buffer.from(`${i}\n`), 0, undefined, 0);
    fs.fdatasyncSync(fd);
  }
  const dt = now() - t0;
  fs.closeSync(fd);
  return n / dt;
}
/**
 * The same floor while the C echo service runs at 10 in flight on the bus: the flush latency
 * the daemon sees when the bus and the load generator keep the CPUs busy.
 */
async function fdatasyncRateUnderLoad() {
  const load = spam(ECHO_NAME, msgEcho, SPAM_COUNT[10] * 2, 10);
  await sleep(50);
  const rate = fdatasyncRate(QUICK ? 300 : 1000);
  await load;
  return rate;
}
function rssOf(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m")) || [])[1]) / 1024;
  return { rssMB: kb("VmRSS"), hwmMB: kb("VmHWM"), anonMB: kb("RssAnon"), fileMB: kb("RssFile") };
}

// ---------------------------------------------------------------------------------------------
// Client library load (runs in a child process).
async function childClient({ lib, address, one, inflight, depth }) {
  const mod = require(lib);
  const Client = mod.ChronosClient || mod.default?.ChronosClient || mod.default;
  if (!Client) throw new Error(`no ChronosClient export in ${lib}: ${Object.keys(mod)}`);
  const client = typeof Client.connect === "function" ? await Client.connect({ address }) : new Client({ address });
  const nextTick = (client.nextTick || client.NextTick || client.next).bind(client);
  let last = -1n;
  let monotonic = true;
  const seen = (t) => {
    t = BigInt(t);
    if (t <= last) monotonic = false;
    last = t;
  };
  // Warm-up, as a long-running application's client would be (V8 compiles the hot path after a
  // few thousand calls; the daemon gets the same before it is measured).
  const warmNext = 500;
  for (let i = 0; i < 2000; i++) await client.getTick();
  for (let i = 0; i < warmNext; i++) seen(await nextTick());
  let t0 = now();
  for (let i = 0; i < one; i++) if (BigInt(await client.getTick()) !== last) monotonic = false;
  const getSec = now() - t0;
  t0 = now();
  for (let i = 0; i < one; i++) seen(await nextTick());
  const oneSec = now() - t0;
  // A sliding window of `depth` calls in flight; replies may complete in any order, so uniqueness
  // is checked on the set, strict order per completion batch is the daemon's business.
  const got = [];
  t0 = now();
  await new Promise((resolve, reject) => {
    let sent = 0;
    let done = 0;
    const fire = () => {
      sent++;
      nextTick().then((t) => {
        got.push(BigInt(t));
        done++;
        if (sent < inflight) fire();
        else if (done === inflight) resolve();
      }, reject);
    };
    for (let i = 0; i < Math.min(depth, inflight); i++) fire();
  });
  const inflightSec = now() - t0;
  const uniq = new Set(got.map(String)).size === got.length && got.every((t) => t > last);
  await (client.close || client.disconnect || (() => {})).call(client);
  process.stdout.write(
    JSON.stringify({ calls: warmNext + one + inflight, oneRate: one / oneSec, getRate: one / getSec, inflightRate: inflight / inflightSec, monotonic, uniq }) + "\n",
  );
}
async function runClient(mode) {
  const c = start(
    process.execPath,
    [fileURLToPath(import.meta.url), "--child-client", JSON.stringify({ lib: libBundle, address: busAddress, one: CLIENT_COUNT.one, inflight: CLIENT_COUNT.inflight, depth: 100 })],
    { name: "client" },
  );
  const { code } = await c.exited;
  if (code !== 0) die(`client load failed (${code}): ${c.err}`);
  const r = JSON.parse(c.out.trim().split("\n").pop());
  modes[mode].calls += BigInt(r.calls);
  check(r.monotonic, "client: NextTick one at a time not strictly increasing");
  check(r.uniq, "client: NextTick 100 in flight returned duplicate or non-increasing ticks");
  return r;
}

// ---------------------------------------------------------------------------------------------
// Measurement.
const PAIRED = ["jit", "jitless", "stock", "stockJitless", ...Object.keys(C_DURABLE)];
const R = { echo: {}, ratio: {}, client: { one: [], get: [], inflight: [], ratioOne: [], ratioGet: [] }, fdatasync: [], fdatasyncLoaded: [] };
for (const mode of PAIRED) {
  R[mode] = {};
  R.ratio[mode] = {};
}
for (const q of QUEUES) {
  R.echo[q] = [];
  for (const mode of PAIRED) {
    R[mode][q] = [];
    R.ratio[mode][q] = [];
  }
}
const skip = {
  jitless: flag("--skip-jitless") || !haveDaemon,
  stock: flag("--skip-stock") || !haveDaemon,
  client: flag("--skip-client") || !haveDaemon || !libBundle,
  cli: flag("--skip-cli") || !haveDaemon,
  memory: flag("--skip-memory") || !haveDaemon,
};
const startups = { jit: [], jitless: [] };
const rssIdle = {};

// Warm-up of the bus and the C service (page cache, first connections).
await spam(ECHO_NAME, msgEcho, 2000, 10);

/**
 * One paired sample: the C service and our daemon (mode) at the same queue depth, back to back
 * (C first in odd rounds, ours first in even ones), so both see the same machine load.
 */
async function pair(mode, q, count, round, echoRates) {
  const runC = async () => {
    const c = await spam(ECHO_NAME, msgEcho, SPAM_COUNT[q], q);
    R.echo[q].push(c);
    return c;
  };
  const runOurs = () => (modes[mode].c ? spam(C_DURABLE[mode].name, C_DURABLE[mode].msg, count, q) : spam(BUS_NAME, msgOurs, count, q));
  let c, r;
  if (round % 2) {
    c = await runC();
    r = await runOurs();
  } else {
    r = await runOurs();
    c = await runC();
  }
  echoRates[q] = c;
  modes[mode].calls += BigInt(count);
  R[mode][q].push(r);
  R.ratio[mode][q].push(r / c);
}

for (let round = 1; round <= ROUNDS; round++) {
  const echoRates = {};
  if (!haveDaemon) {
    for (const q of QUEUES) {
      echoRates[q] = await spam(ECHO_NAME, msgEcho, SPAM_COUNT[q], q);
      R.echo[q].push(echoRates[q]);
    }
  }
  if (haveDaemon) {
    const d = await startDaemon("jit");
    startups.jit.push(d.startSec);
    if (round === 1) {
      await sleep(1000);
      rssIdle.jit = rssOf(d.pid);
    }
    await spam(BUS_NAME, msgOurs, 2000, 10); // warm the JIT like a running service
    modes.jit.calls += 2000n;
    for (const q of QUEUES) await pair("jit", q, SPAM_COUNT[q], round, echoRates);
    if (!skip.client) {
      echoRates[1] = await spam(ECHO_NAME, msgEcho, SPAM_COUNT[1], 1);
      R.echo[1].push(echoRates[1]);
      const c = await runClient("jit");
      R.client.one.push(c.oneRate);
      R.client.get.push(c.getRate);
      R.client.ratioGet.push(c.getRate / echoRates[1]);
      R.client.inflight.push(c.inflightRate);
      R.client.ratioOne.push(c.oneRate / echoRates[1]);
    }
    await stopDaemon(d, "jit");
  }
  if (!skip.jitless) {
    const d = await startDaemon("jitless");
    startups.jitless.push(d.startSec);
    if (round === 1) {
      await sleep(1000);
      rssIdle.jitless = rssOf(d.pid);
    }
    await spam(BUS_NAME, msgOurs, 2000, 10);
    modes.jitless.calls += 2000n;
    for (const q of QUEUES) await pair("jitless", q, SPAM_COUNT[q], round, echoRates);
    await stopDaemon(d, "jitless");
  }
  if (!skip.stock) {
    for (const [mode, queues] of [
      ["stock", QUEUES],
      ["stockJitless", [100]],
    ]) {
      const d = await startDaemon(mode);
      await spam(BUS_NAME, msgOurs, 2000, 10);
      modes[mode].calls += 2000n;
      for (const q of queues) {
        // Stock dbus-next under --jitless is slow: fewer calls keep the run short.
        await pair(mode, q, mode === "stockJitless" ? Math.round(SPAM_COUNT[q] / 3) : SPAM_COUNT[q], round, echoRates);
      }
      await stopDaemon(d, mode);
    }
  }
  for (const form of cForms) {
    await spam(C_DURABLE[form].name, C_DURABLE[form].msg, 1000, 10);
    modes[form].calls += 1000n;
    for (const q of QUEUES) await pair(form, q, SPAM_COUNT[q], round, echoRates);
  }
  R.fdatasync.push(fdatasyncRate());
  R.fdatasyncLoaded.push(await fdatasyncRateUnderLoad());
  const fmt = (q) =>
    `q${q} C ${Math.round(echoRates[q])}` +
    (haveDaemon ? ` ours ${R.ratio.jit[q].at(-1).toFixed(2)}` : "") +
    (!skip.jitless ? ` jitless ${R.ratio.jitless[q].at(-1).toFixed(2)}` : "") +
    (!skip.stock ? ` stock ${R.ratio.stock[q].at(-1).toFixed(2)}` : "") +
    (!skip.stock && q === 100 ? ` stock-jitless ${R.ratio.stockJitless[q].at(-1).toFixed(2)}` : "") +
    cForms.map((f) => ` ${f} ${R.ratio[f][q].at(-1).toFixed(2)}`).join("");
  log(`round ${round}/${ROUNDS}: ${QUEUES.map(fmt).join(" | ")}${!skip.client ? ` | client get ${R.client.ratioGet.at(-1).toFixed(2)} next ${R.client.ratioOne.at(-1).toFixed(2)}` : ""} | fdatasync ${Math.round(R.fdatasync.at(-1))}/s, under bus load ${Math.round(R.fdatasyncLoaded.at(-1))}/s`);
}

// CLI: chronos-ctl tick against busctl call GetTick, interleaved.
const cli = { runs: CLI_RUNS, ctlMs: [], busctlMs: [], how: null };
if (!skip.cli) {
  const d = await startDaemon("jit");
  const bin = path.join(root, "dist", "chronos");
  let ctlCmd;
  if (fs.existsSync(bin)) {
    // The product's way: a chronos-ctl name for the one binary (busybox dispatch, NOTES section 2).
    const link = path.join(work, "chronos-ctl");
    fs.symlinkSync(bin, link);
    ctlCmd = [link, ["--address", busAddress, "tick"]];
    const probe = spawnSync(ctlCmd[0], ctlCmd[1], { env: baseEnv, encoding: "utf8" });
    if (probe.status === 0) {
      cli.how = "dist/chronos (standalone binary) invoked as chronos-ctl";
    } else {
      ctlCmd = [bin, ["ctl", "--address", busAddress, "tick"]];
      cli.how = "dist/chronos ctl (standalone binary)";
      const p2 = spawnSync(ctlCmd[0], ctlCmd[1], { env: baseEnv, encoding: "utf8" });
      if (p2.status !== 0) {
        log(`dist/chronos cannot run 'ctl tick' (${(p2.stderr || "").trim().split("\n")[0]}): using the bundle under node`);
        ctlCmd = null;
      }
    }
    if (ctlCmd && fs.statSync(bin).mtimeMs < newestSrcMtime()) cli.how += " (older than src/: run npm run build for a fresh one)";
  }
  if (!ctlCmd) {
    ctlCmd = [process.execPath, [bundle, "ctl", "--address", busAddress, "tick"]];
    cli.how = fs.existsSync(bin)
      ? "node chronos.cjs ctl (bundle built by the bench; dist/chronos failed, see the log)"
      : "node chronos.cjs ctl (no dist/chronos; bundle built by the bench)";
    const p = spawnSync(ctlCmd[0], ctlCmd[1], { env: baseEnv, encoding: "utf8" });
    if (p.status !== 0) die(`chronos ctl tick failed: ${p.stderr}`);
  }
  const busctlCmd = ["busctl", [`--address=${busAddress}`, "call", BUS_NAME, OBJ_PATH, IFACE, "GetTick"]];
  const timeOne = async ([cmd, a]) => {
    const t0 = now();
    const c = start(cmd, a, { name: path.basename(cmd) });
    const { code } = await c.exited;
    const ms = (now() - t0) * 1000;
    if (code !== 0) die(`${cmd} ${a.join(" ")} failed: ${c.err}`);
    return { ms, out: c.out.trim() };
  };
  // `chronos-ctl tick` reads the current tick (GetTick), like the busctl call; both must print
  // the number of NextTick calls made so far.
  for (let i = 0; i < CLI_RUNS; i++) {
    const a = await timeOne(ctlCmd);
    check(a.out === String(modes.jit.calls), `chronos-ctl tick printed "${a.out}", expected ${modes.jit.calls}`);
    cli.ctlMs.push(a.ms);
    const b = await timeOne(busctlCmd);
    cli.busctlMs.push(b.ms);
    check(b.out === `t ${modes.jit.calls}`, `busctl GetTick printed "${b.out}", expected t ${modes.jit.calls}`);
  }
  await stopDaemon(d, "jit");
  log(`cli: chronos-ctl tick ${median(cli.ctlMs).toFixed(1)} ms, busctl ${median(cli.busctlMs).toFixed(1)} ms`);
}
function newestSrcMtime() {
  let newest = 0;
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  walk(path.join(root, "src"));
  return newest;
}

// Memory: a fresh daemon, idle, then after MEMORY_CALLS NextTick calls; as the unit runs it
// (the target) and without the unit's NODE_OPTIONS.
const memory = { calls: MEMORY_CALLS };
async function measureMemory(mode) {
  const out = {};
  const d = await startDaemon(mode);
  await sleep(1500);
  out.idle = rssOf(d.pid);
  const t0 = now();
  let left = MEMORY_CALLS;
  while (left > 0) {
    const n = Math.min(left, 250_000);
    await spam(BUS_NAME, msgOurs, n, 100);
    modes[mode].calls += BigInt(n);
    left -= n;
  }
  out.loadSec = now() - t0;
  await sleep(1500);
  out.after = rssOf(d.pid);
  out.ratio = out.after.rssMB / out.idle.rssMB;
  await stopDaemon(d, mode);
  log(`memory (${mode}): idle ${out.idle.rssMB.toFixed(1)} MB, after ${MEMORY_CALLS} calls ${out.after.rssMB.toFixed(1)} MB (peak ${out.after.hwmMB.toFixed(1)} MB)`);
  return out;
}
if (!skip.memory) {
  Object.assign(memory, await measureMemory("memory"));
  memory.jit = await measureMemory("memoryJit");
}

// ---------------------------------------------------------------------------------------------
// Report.
ctl.disconnect();
echo.kill("SIGTERM");
for (const [form, c] of Object.entries(cProcs)) {
  c.kill("SIGTERM");
  await c.exited;
  // The C service counts durably too: its file holds every call made to it (the O_DIRECT form
  // pads the number with spaces to a whole sector).
  const text = fs.readFileSync(C_DURABLE[form].tickFile, "latin1");
  check(text.trim() === String(modes[form].calls), `${form}: tick file holds ${JSON.stringify(text.trim())}, expected ${modes[form].calls}`);
}
busd.kill("SIGTERM");
await Promise.all([echo.exited, busd.exited]);

const sizes = {};
for (const [k, p] of Object.entries({ binary: "dist/chronos", bundle: "dist/chronos.cjs" })) {
  const f = path.join(root, p);
  if (fs.existsSync(f)) sizes[k] = fs.statSync(f).size;
}
if (bundle) sizes.benchBundle = fs.statSync(bundle).size;
const cpu = (fs.readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m) || [])[1] || os.cpus()[0]?.model || "?";
const git = (a) => spawnSync("git", a, { cwd: root, encoding: "utf8" }).stdout.trim();
const machine = {
  nproc: os.availableParallelism(),
  cpu,
  kernel: `${os.type()} ${os.release()}`,
  memGB: Math.round(os.totalmem() / 2 ** 30),
  loadavgEnd: os.loadavg().map((x) => +x.toFixed(2)),
  tickFileFs: `${diskFs.type} (${diskFs.dev})`,
};
const versions = {
  node: process.version,
  dbusNext: require("dbus-next/package.json").version,
  dbusDaemon: firstLine("dbus-daemon", ["--version"]),
  dbusTests: dpkgVersion("dbus-tests"),
  busctl: firstLine("busctl", ["--version"]),
  chronos: pkg.version,
  git: git(["rev-parse", "--short", "HEAD"]) + (git(["status", "--porcelain", "--", "src"]) ? " (src modified)" : ""),
};
const med = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, median(v)]));
const summary = {
  echo: med(R.echo),
  jit: med(R.jit),
  jitless: med(R.jitless),
  ratioJit: med(R.ratio.jit),
  ratioJitless: med(R.ratio.jitless),
  stock: med(R.stock),
  stockJitless: med(R.stockJitless),
  ratioStock: med(R.ratio.stock),
  ratioStockJitless: med(R.ratio.stockJitless),
  clientOne: median(R.client.one),
  clientInflight: median(R.client.inflight),
  clientRatioOne: median(R.client.ratioOne),
  clientGet: median(R.client.get),
  clientRatioGet: median(R.client.ratioGet),
  fdatasync: median(R.fdatasync),
  // One durable call at a time can at best take the C service's round trip plus one flush.
  boundRatioOne: 1 / (1 + median(R.echo[1]) / median(R.fdatasync)),
  fdatasyncLoaded: median(R.fdatasyncLoaded),
  // The C durable service's forms: calls/s, paired ratio to the C echo service, and ours (JIT,
  // unit flags) as a fraction of the plain form (the ratio of the two paired ratios).
  c: Object.fromEntries(cForms.map((f) => [f, med(R[f])])),
  ratioC: Object.fromEntries(cForms.map((f) => [f, med(R.ratio[f])])),
  jitVsC: Object.fromEntries(QUEUES.map((q) => [q, median(R.ratio.jit[q]) / median(R.ratio.cDurable[q])])),
  jitlessVsC: Object.fromEntries(QUEUES.map((q) => [q, median(R.ratio.jitless[q]) / median(R.ratio.cDurable[q])])),
  ctlMs: median(cli.ctlMs),
  busctlMs: median(cli.busctlMs),
  ctlRatio: median(cli.ctlMs) / median(cli.busctlMs),
  idleRssMB: memory.idle?.rssMB,
  afterRssMB: memory.after?.rssMB,
  rssRatio: memory.ratio,
};
const cRatio = (q) => summary.ratioC.cDurable?.[q];
const targets = [
  ["durable NextTick, 100 in flight", "ratio >= 0.8", summary.ratioJit[100], (x) => x >= 0.8, (x) => x.toFixed(2), cRatio(100)],
  ["durable NextTick, 10 in flight", "ratio >= 0.7", summary.ratioJit[10], (x) => x >= 0.7, (x) => x.toFixed(2), cRatio(10)],
  [`durable NextTick with the unit's NODE_OPTIONS (${unitNodeOptions}), 100 in flight`, "ratio >= 0.6", summary.ratioJitless[100], (x) => x >= 0.6, (x) => x.toFixed(2), cRatio(100)],
  ["client one call at a time (GetTick) vs C spam queue 1", "ratio >= 0.5", summary.clientRatioGet, (x) => x >= 0.5, (x) => x.toFixed(2)],
  ["client one call at a time (NextTick, one fdatasync each) vs C spam queue 1", "ratio >= 0.5", summary.clientRatioOne, (x) => x >= 0.5, (x) => x.toFixed(2), cRatio(1)],
  ["chronos-ctl tick vs busctl call GetTick", "<= 10x wall time", summary.ctlRatio, (x) => x <= 10, (x) => `${x.toFixed(1)}x`],
  ["daemon RSS idle (as the unit runs it)", "< 60 MB", summary.idleRssMB, (x) => x < 60, (x) => `${x.toFixed(1)} MB`],
  [`daemon RSS after ${MEMORY_CALLS.toLocaleString("en")} calls (as the unit runs it)`, "<= 1.5x idle", summary.rssRatio, (x) => x <= 1.5, (x) => `${x.toFixed(2)}x`],
].map(([what, target, v, ok, f, c]) => ({
  what,
  target,
  value: v,
  shown: Number.isFinite(v) ? f(v) : "not measured",
  met: Number.isFinite(v) ? ok(v) : null,
  cDurable: Number.isFinite(c) ? c : null,
}));

const stamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
const result = {
  date: stamp,
  quick: QUICK,
  rounds: ROUNDS,
  counts: { spam: SPAM_COUNT, client: CLIENT_COUNT, cliRuns: CLI_RUNS, memoryCalls: MEMORY_CALLS },
  machine,
  versions,
  raw: R,
  startupsSec: startups,
  rssIdle,
  cli,
  memory,
  sizes,
  summary,
  targets,
  correctness: {
    nextTickCalls: Object.fromEntries(Object.entries(modes).map(([k, m]) => [k, String(m.calls)])),
    failures,
  },
  runtimeSec: (Date.now() - t00) / 1000,
};
const resultsDir = path.join(root, "bench", "results");
fs.mkdirSync(resultsDir, { recursive: true });
const resultFile = path.join(resultsDir, `${stamp.replace(/:/g, "-")}${QUICK ? "-quick" : ""}.json`);
fs.writeFileSync(resultFile, JSON.stringify(result, null, 2) + "\n");
log(`raw numbers -> ${path.relative(root, resultFile)}`);

const n0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en") : "-");
const r2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "-");
let md = "";
md += `Last run: ${stamp}${QUICK ? " (--quick)" : ""}, ${ROUNDS} rounds, medians; every figure of ours is paired with a run of the C service right before or after it (alternating), ratios are medians of those paired ratios; the C column is the median of all its runs. Raw numbers: \`bench/results/${path.basename(resultFile)}\`.\n\n`;
md += `Machine: ${machine.nproc} vCPU, ${machine.cpu}, ${machine.kernel}, ${machine.memGB} GB RAM, tick file on ${machine.tickFileFs}; load average at the end ${machine.loadavgEnd.join(" ")}.\n`;
md += `Versions: Node ${versions.node} (daemon, client and bench), dbus-next ${versions.dbusNext}, ${versions.dbusDaemon}, dbus-tests ${versions.dbusTests}, ${versions.busctl}, chronos ${versions.chronos} at ${versions.git}.\n\n`;
md += `### Targets\n\nThe last column is the same figure for the C durable service (bench/c/durable-echo.c: our durability, group commit and tick-file protocol, in single-threaded C libdbus; for the client row, C spam against it), measured in the same rounds against the same C echo runs.\n\n`;
md += `| target | goal | achieved | | C with the same durability |\n|---|---|---|---|---|\n`;
for (const t of targets) md += `| ${t.what} | ${t.target} | ${t.shown} | ${t.met === null ? "-" : t.met ? "met" : "**missed**"} | ${t.cDurable === null ? "-" : t.cDurable.toFixed(2)} |\n`;
md += `\n### Throughput (calls/s, \`dbus-test-tool spam --message-stdin\` with a NextTick call)\n\n`;
md += `| calls in flight | C echo (ceiling, persists nothing) | C durable (our design in C) | ratio | Chronos durable | ratio | Chronos, the unit's NODE_OPTIONS (${unitNodeOptions}) | ratio | stock dbus-next path (CHRONOS_FAST_PATH=0) | ratio | stock, --jitless | ratio |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n`;
for (const q of QUEUES) {
  md += `| ${q} | ${n0(summary.echo[q])} | ${n0(summary.c.cDurable?.[q])} | ${r2(summary.ratioC.cDurable?.[q])} | ${n0(summary.jit[q])} | ${r2(summary.ratioJit[q])} | ${n0(summary.jitless[q])} | ${r2(summary.ratioJitless[q])} | ${n0(summary.stock[q])} | ${r2(summary.ratioStock[q])} | ${n0(summary.stockJitless[q])} | ${r2(summary.ratioStockJitless[q])} |\n`;
}
if (cForms.includes("cDurable")) {
  md += `\nChronos as a fraction of the C durable service (ratio of the paired ratios), 1 / 10 / 100 in flight: ${QUEUES.map((q) => r2(summary.jitVsC[q])).join(" / ")}; with the unit's NODE_OPTIONS ${QUEUES.map((q) => r2(summary.jitlessVsC[q])).join(" / ")}.\n`;
}
if (cForms.length > 1) {
  md += `\n#### The same durability in C, three ways (ratio to the C echo service, paired, medians)\n\n| calls in flight | ${cForms.map((f) => C_DURABLE[f].label).join(" | ")} |\n|---|${cForms.map(() => "---|").join("")}\n`;
  for (const q of QUEUES) md += `| ${q} | ${cForms.map((f) => `${n0(summary.c[f][q])} calls/s, ${r2(summary.ratioC[f][q])}`).join(" | ")} |\n`;
  md += `\nThe flusher thread starts each flush the moment the previous one returns, covering every call read meanwhile; the O_DIRECT form writes one whole 512-byte sector with \`O_DIRECT|O_DSYNC\` (the number padded with spaces), which is not tick.dat's format and is shown only for what it would buy.\n`;
}
md += `\n### Client library, CLI, memory, size\n\n| figure | value |\n|---|---|\n`;
md += `| client GetTick, one call at a time | ${n0(summary.clientGet)} calls/s (ratio to C spam queue 1: ${r2(summary.clientRatioGet)}) |\n`;
md += `| client NextTick, one call at a time | ${n0(summary.clientOne)} calls/s (ratio to C spam queue 1: ${r2(summary.clientRatioOne)}) |\n`;
md += `| disk floor: pwrite + fdatasync, one at a time, same folder | ${n0(summary.fdatasync)} /s |\n`;
md += `| disk floor while the C echo service runs at 10 in flight | ${n0(summary.fdatasyncLoaded)} /s |\n`;
md += `| model ceiling for one durable call at a time (the C round trip plus one disk-floor flush) | ${n0(1 / (1 / summary.echo[1] + 1 / summary.fdatasync))} calls/s (ratio to C spam queue 1: ${r2(summary.boundRatioOne)}) |\n`;
if (cForms.includes("cDurable")) {
  md += `| measured: C spam queue 1 against the C durable service (a C client, a C service, one flush per call) | ${n0(summary.c.cDurable[1])} calls/s (ratio to C spam queue 1 against the echo service: ${r2(summary.ratioC.cDurable[1])}); our client's NextTick is ${r2(summary.clientOne / summary.c.cDurable[1])} of it |\n`;
}
md += `| client NextTick, 100 in flight | ${n0(summary.clientInflight)} calls/s |\n`;
md += `| \`chronos-ctl tick\` wall time | ${r2(summary.ctlMs)} ms median of ${cli.ctlMs.length} (${cli.how ?? "not measured"}) |\n`;
md += `| \`busctl call ... GetTick\` wall time | ${r2(summary.busctlMs)} ms median of ${cli.busctlMs.length} |\n`;
md += `| daemon RSS idle, first instance of each variant (JIT / unit flags) | ${r2(rssIdle.jit?.rssMB)} / ${r2(rssIdle.jitless?.rssMB)} MB |\n`;
md += `| daemon RSS, fresh instance with the unit's NODE_OPTIONS (the target): idle -> after ${MEMORY_CALLS.toLocaleString("en")} NextTick calls | ${r2(memory.idle?.rssMB)} -> ${r2(memory.after?.rssMB)} MB (peak ${r2(memory.after?.hwmMB)} MB; load took ${r2(memory.loadSec)} s) |\n`;
md += `| of which anonymous (heap) / file-backed (the Node binary's pages), idle -> after | ${r2(memory.idle?.anonMB)} -> ${r2(memory.after?.anonMB)} MB / ${r2(memory.idle?.fileMB)} -> ${r2(memory.after?.fileMB)} MB |\n`;
md += `| the same without the unit's NODE_OPTIONS (JIT, no heap cap) | ${r2(memory.jit?.idle?.rssMB)} -> ${r2(memory.jit?.after?.rssMB)} MB (${r2(memory.jit?.ratio)}x; anonymous ${r2(memory.jit?.idle?.anonMB)} -> ${r2(memory.jit?.after?.anonMB)} MB, file-backed ${r2(memory.jit?.idle?.fileMB)} -> ${r2(memory.jit?.after?.fileMB)} MB) |\n`;
md += `| daemon start to name owned (JIT / unit flags) | ${r2(median(startups.jit) * 1000)} / ${r2(median(startups.jitless) * 1000)} ms |\n`;
md += `| dist/chronos (standalone binary) | ${sizes.binary ? `${(sizes.binary / 2 ** 20).toFixed(1)} MiB` : "not built"} |\n`;
md += `| bundle (esbuild, unminified) | ${n0((sizes.benchBundle ?? sizes.bundle) / 1024)} KiB |\n`;
md += `\n### Correctness checks during the run\n\n`;
md += `NextTick calls made: ${Object.entries(modes).map(([k, m]) => `${k} ${m.calls}`).join(", ")}. `;
md += failures.length ? `**${failures.length} check(s) failed:**\n\n${failures.map((f) => `- ${f}`).join("\n")}\n` : `After every load (and after every restart) GetTick equalled the number of NextTick calls made and the tick file held it; client ticks were strictly increasing and unique; each \`chronos-ctl tick\` and \`busctl call GetTick\` printed that same count${cForms.length ? "; each C durable service's tick file held the number of calls made to it" : ""}.\n`;

if (WRITE_MD) {
  const mdFile = path.join(root, "BENCHMARKS.md");
  const BEGIN = "<!-- bench:begin (written by npm run bench; edit outside these markers) -->";
  const END = "<!-- bench:end -->";
  let doc = fs.existsSync(mdFile)
    ? fs.readFileSync(mdFile, "utf8")
    : `# Chronos benchmarks\n\n\`npm run bench\` (about 5 minutes; \`-- --quick\` for about 1-2) measures, on a private dbus-daemon, our daemon against the C libdbus echo service (\`dbus-test-tool echo\`, the single-threaded C ceiling on this bus; it persists nothing). See bench/bench.mjs for the method.\n\n## Latest run\n\n${BEGIN}\n${END}\n`;
  const i = doc.indexOf(BEGIN);
  const j = doc.indexOf(END);
  doc = i >= 0 && j > i ? doc.slice(0, i + BEGIN.length) + "\n" + md + doc.slice(j) : doc + `\n${BEGIN}\n${md}${END}\n`;
  fs.writeFileSync(mdFile, doc);
  log("table -> BENCHMARKS.md");
}
process.stdout.write(md);
cleanup();
log(`done in ${((Date.now() - t00) / 1000).toFixed(0)} s${failures.length ? `, ${failures.length} correctness check(s) FAILED` : ""}`);
process.exit(failures.length ? 2 : 0);
