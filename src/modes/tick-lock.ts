// One daemon per tick file, whatever bus it serves: two daemons sharing a file would hand out
// the same ticks. Node has no flock(2), so the lock is an abstract-namespace unix socket named
// after the file's device and inode: the kernel frees it when the process dies, even by kill -9,
// so there is no stale lock to clean up. (Abstract sockets are per network namespace: under
// systemd's PrivateNetwork the unit has its own, and only one instance of the unit runs.)
import fs from 'node:fs';
import net from 'node:net';

export class TickFileLockedError extends Error {
  override readonly name = 'TickFileLockedError';
}

export function lockTickFile(file: string): Promise<net.Server> {
  const st = fs.statSync(file);
  const name = `\0org.jesternet.Chronos.tick-lock.${st.dev}.${st.ino}`;
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => sock.destroy());
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(new TickFileLockedError(`${file} is in use by another chronosd-dbus`));
      } else {
        reject(err);
      }
    });
    server.listen(name, () => {
      server.unref();
      resolve(server);
    });
  });
}
