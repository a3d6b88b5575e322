// Builds the bundle the integration tests run, so `vitest run` works from a fresh clone.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): void {
  const root = path.resolve(__dirname, '..', '..');
  const r = spawnSync(process.execPath, [path.join(root, 'build.mjs'), '--bundle-only'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('building dist/chronos.cjs failed');
}
