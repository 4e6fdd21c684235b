// A bounded load generator for lifecycle tests: concurrent clients on loopback that each send
// GET requests back to back until stopped (or until maxMs), and count what failed.
// `fresh`: a new connection per request. `keepAlive`: one connection reused for as long as the
// server keeps it, reconnecting after a response that closes it.
import { connect, type Socket } from 'node:net';
import { writeFileSync, readFileSync } from 'node:fs';
import { parseResponses } from './helpers.js';

export interface LoadReport {
  ok: number;
  failed: number;
  /** What failed, first few: error codes or 'closed before a response'. */
  failures: string[];
  /** Distinct response bodies seen (apps answer their version or thread). */
  bodies: Map<string, number>;
}

export interface Load {
  readonly report: LoadReport;
  /** Waits until at least `count` more requests have succeeded. */
  progress(count: number): Promise<void>;
  stop(): Promise<LoadReport>;
}

type Outcome = { ok: true; body: string; close: boolean } | { ok: false; why: string };

function exchange(socket: Socket, path: string): Promise<Outcome> {
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    const done = (outcome: Outcome): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      resolve(outcome);
    };
    const onData = (chunk: Buffer): void => {
      data = Buffer.concat([data, chunk]);
      const response = parseResponses(data).responses[0];
      if (!response) return;
      if (response.status !== 200) return done({ ok: false, why: `status ${response.status}` });
      done({ ok: true, body: response.body.toString(), close: /close/i.test(response.header('connection') ?? '') });
    };
    const onClose = (): void => done({ ok: false, why: 'closed before a response' });
    const onError = (error: NodeJS.ErrnoException): void => done({ ok: false, why: error.code ?? error.message });
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onError);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}

function open(port: number): Promise<Socket | string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (error: NodeJS.ErrnoException): void => resolve(error.code ?? error.message);
    socket.once('error', onError);
  });
}

export function startLoad(port: number, options: { clients?: number; mode: 'fresh' | 'keepAlive'; path?: string; maxMs?: number }): Load {
  const report: LoadReport = { ok: 0, failed: 0, failures: [], bodies: new Map() };
  const path = options.path ?? '/';
  let running = true;
  const waiters: { target: number; resolve: () => void }[] = [];
  const deadline = setTimeout(() => (running = false), options.maxMs ?? 30_000);
  const fail = (why: string): void => {
    report.failed += 1;
    if (report.failures.length < 10) report.failures.push(why);
  };
  const succeed = (body: string): void => {
    report.ok += 1;
    report.bodies.set(body, (report.bodies.get(body) ?? 0) + 1);
    for (const waiter of waiters.filter((w) => report.ok >= w.target)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  async function client(): Promise<void> {
    let socket: Socket | undefined;
    while (running) {
      if (!socket || socket.destroyed) {
        const opened = await open(port);
        if (typeof opened === 'string') {
          fail(opened);
          continue;
        }
        socket = opened;
      }
      const outcome = await exchange(socket, path);
      if (outcome.ok) succeed(outcome.body);
      else fail(outcome.why);
      if (!outcome.ok || outcome.close || options.mode === 'fresh') {
        socket.destroy();
        socket = undefined;
      }
    }
    socket?.destroy();
  }
  const clients = Array.from({ length: options.clients ?? 8 }, () => client());
  return {
    report,
    progress: (count) => new Promise((resolve) => waiters.push({ target: report.ok + count, resolve })),
    async stop() {
      running = false;
      await Promise.all(clients);
      clearTimeout(deadline);
      return report;
    },
  };
}

const MIGRATE = '/proc/sys/net/ipv4/tcp_migrate_req';

/**
 * Zero-downtime tests need the kernel to hand connections queued on a closing listener to a
 * sibling (DESIGN.md). Returns why that cannot be arranged here, or undefined once it is on.
 */
export function ensureMigrateReq(): string | undefined {
  try {
    if (readFileSync(MIGRATE, 'utf8').trim() === '1') return undefined;
    writeFileSync(MIGRATE, '1');
    return readFileSync(MIGRATE, 'utf8').trim() === '1' ? undefined : 'net.ipv4.tcp_migrate_req stayed 0';
  } catch (error) {
    return `net.ipv4.tcp_migrate_req cannot be set to 1 here (${(error as Error).message}); run as root on Linux >= 5.14`;
  }
}
