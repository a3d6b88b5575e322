// Debian 12 (bookworm): systemd 252, dbus-daemon 1.14. Run alone: npx vitest run test/system/bookworm
import { defineSystemSuite } from './suite.js';

defineSystemSuite('bookworm');
