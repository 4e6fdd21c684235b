// Checks every address before any worker starts.
// TCP: uWS sets SO_REUSEPORT on every listen, so a second program's listener would silently
// join the group and share our traffic (DESIGN.md). A plain node:net listen does not set it, so
// it fails with EADDRINUSE whenever anyone already listens there. Port 0 is made concrete here,
// so every worker thread joins the same port.
// Unix: a socket file left by a crash is removed; one that answers belongs to a running server.
import { existsSync, lstatSync, rmSync, statSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname } from 'node:path';
import { BootError, PortInUseError } from './errors.js';
import { isUnix, unixPath, type Bind, type TcpBind, type UnixBind } from './settings.js';
import { formatAddress } from './protocol.js';

function probeTcp(bind: TcpBind): Promise<TcpBind> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      const where = formatAddress(bind);
      if (error.code === 'EADDRINUSE') reject(new PortInUseError(where, error));
      else reject(new BootError(`Cannot listen at ${where}: ${error.message}`, { cause: error }));
    });
    server.listen({ host: bind.host, port: bind.port, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : bind.port;
      server.close(() => resolve({ host: bind.host, port }));
    });
  });
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

async function probeUnix(bind: UnixBind, workers: number): Promise<UnixBind> {
  const dir = dirname(bind.unix);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new BootError(`Cannot listen at unix:${bind.unix}: ${dir} is not a directory`);
  for (let worker = 1; worker <= workers; worker++) {
    const path = unixPath(bind, worker);
    if (!existsSync(path)) continue;
    if (!lstatSync(path).isSocket()) throw new BootError(`Cannot listen at unix:${path}: a file that is not a socket is in the way`);
    if (await answers(path)) throw new PortInUseError(`unix:${path}`);
    rmSync(path); // stale, left by a server that did not exit cleanly
  }
  return bind;
}

export async function probeBinds(binds: readonly Bind[], workers: number): Promise<Bind[]> {
  const out: Bind[] = [];
  for (const bind of binds) out.push(isUnix(bind) ? await probeUnix(bind, workers) : await probeTcp(bind));
  return out;
}
