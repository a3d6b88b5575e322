// Debian 13 (trixie): systemd 257, dbus-daemon 1.16. Run alone: npx vitest run test/system/trixie
import { defineSystemSuite } from './suite.js';

defineSystemSuite('trixie');
