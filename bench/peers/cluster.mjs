// Peer for startup and memory: node:cluster with N node:http workers (N from WORKERS).
import cluster from 'node:cluster';
import { createServer } from 'node:http';

const workers = Number(process.env.WORKERS ?? 1);
if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers)) worker.kill();
    process.exit(0);
  });
} else {
  createServer((_req, res) => res.end('Hello, World!')).listen(Number(process.env.PORT), '127.0.0.1');
}
