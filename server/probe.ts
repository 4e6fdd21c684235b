// uWS sets SO_REUSEPORT on every listen, so a second program's listener would silently join
// the group and share our traffic (DESIGN.md). A plain node:net listen does not set it, so it
// fails with EADDRINUSE whenever anyone already listens there: probe with it first.
// Port 0 is made concrete here, so every worker thread joins the same port.
import { createServer } from 'node:net';
import { BootError, PortInUseError } from './errors.js';
import type { TcpBind } from './settings.js';
import { formatAddress } from './protocol.js';

function probe(bind: TcpBind): Promise<TcpBind> {
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

export async function probeBinds(binds: readonly TcpBind[]): Promise<TcpBind[]> {
  const out: TcpBind[] = [];
  for (const bind of binds) out.push(await probe(bind));
  return out;
}
