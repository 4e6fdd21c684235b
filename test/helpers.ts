// Test harness: real `serve` processes on free loopback ports, raw sockets, and teardown that
// runs also when a test fails (every server started is tracked and stopped in a root hook).
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SERVE = fileURLToPath(new URL('../bin/serve.js', import.meta.url));
export const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

const running = new Set<ChildProcess>();

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await Promise.all([...running].map((child) => kill(child)));
  },
};

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

export interface Served {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  log(): string;
  /** Everything the server wrote to stdout so far (the access log with --access-log -). */
  stdout(): string;
  /** Waits until the log matches. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then the exit code (SIGKILL after 15 s). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** The exit code of a server that stops by itself (halts). */
  exited(): Promise<number | null>;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `serve ARGS` to completion (for commands that exit by themselves). */
export async function runServe(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [SERVE, ...args], { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  running.delete(child);
  return { code, stdout, stderr };
}

/** Starts `serve APP` on a free port and resolves once it listens. */
export async function serve(app: string, args: readonly string[] = [], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Served> {
  const child = spawn(process.execPath, [SERVE, app, '--bind', '127.0.0.1:0', ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NARWHAL_LOG_LEVEL: 'debug', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk;
    for (const wake of waiters) wake();
  });
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk));
  const exited = once(child, 'exit');
  const waitForLog = async (pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(stderr);
      if (match) return match;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`serve exited (${child.exitCode ?? child.signalCode}) before logging ${pattern}:\n${stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Timed out waiting for ${pattern} in the log:\n${stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done(): void {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
        void exited.then(done);
      });
    }
  };
  const match = await waitForLog(/Listening at: http:\/\/127\.0\.0\.1:(\d+)/);
  const port = Number(match[1]);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    log: () => stderr,
    stdout: () => stdout,
    waitForLog,
    async exited() {
      await exited;
      running.delete(child);
      return child.exitCode;
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.kill(signal);
        await exited;
        clearTimeout(timer);
      }
      running.delete(child);
      return child.exitCode;
    },
  };
}

/** A loopback port nothing listens on (the kernel's pick, released again). */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Waits (polling, bounded) until `read()` satisfies `done`; for files other processes write. */
export async function until<T>(read: () => T, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`Timed out; last value: ${String(value).slice(0, 2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface RawResponse {
  readonly status: number;
  readonly statusLine: string;
  /** Header lines as sent: [name as sent, value]. */
  readonly rawHeaders: [string, string][];
  header(name: string): string | undefined;
  headerAll(name: string): string[];
  readonly body: Buffer;
  readonly chunked: boolean;
}

/** Parses as many complete HTTP/1.1 responses as `data` holds (`head` marks HEAD exchanges). */
export function parseResponses(data: Buffer, heads: readonly boolean[] = []): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let offset = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', offset);
    if (end < 0) break;
    const lines = data.subarray(offset, end).toString('latin1').split('\r\n');
    const statusLine = lines[0]!;
    const rawHeaders = lines.slice(1).map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon), line.slice(colon + 1).trim()] as [string, string];
    });
    const headerAll = (name: string): string[] => rawHeaders.filter(([key]) => key.toLowerCase() === name).map(([, value]) => value);
    const status = Number(statusLine.split(' ')[1]);
    let cursor = end + 4;
    let body: Buffer = Buffer.alloc(0);
    const chunked = headerAll('transfer-encoding').some((value) => /chunked/i.test(value));
    const noBody = heads[responses.length] === true || status === 204 || status === 304 || status < 200;
    if (noBody) {
      // nothing follows the head
    } else if (chunked) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = data.indexOf('\r\n', cursor);
        if (lineEnd < 0) return { responses, rest: data.subarray(offset) };
        const size = parseInt(data.subarray(cursor, lineEnd).toString('latin1'), 16);
        if (data.length < lineEnd + 2 + size + 2) return { responses, rest: data.subarray(offset) };
        parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        cursor = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      const length = Number(headerAll('content-length')[0] ?? 0);
      if (data.length < cursor + length) break;
      body = data.subarray(cursor, cursor + length);
      cursor += length;
    }
    responses.push({ status, statusLine, rawHeaders, header: (name) => headerAll(name)[0], headerAll, body, chunked });
    offset = cursor;
  }
  return { responses, rest: data.subarray(offset) };
}

/**
 * Writes raw bytes to the server and collects responses until `count` are complete or the server
 * closes the connection. Resolves with what arrived and whether the server closed.
 */
export async function rawExchange(
  port: number,
  request: string | Buffer,
  options: { count?: number; heads?: boolean[]; timeoutMs?: number } = {},
): Promise<{ responses: RawResponse[]; closed: boolean; raw: Buffer }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(request);
  const chunks: Buffer[] = [];
  const count = options.count ?? 1;
  return new Promise((resolve, reject) => {
    let closed = false;
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks);
      resolve({ responses: parseResponses(raw, options.heads).responses, closed, raw });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`No ${count} complete response(s) within ${options.timeoutMs ?? 10_000} ms; got:\n${Buffer.concat(chunks).toString('latin1').slice(0, 2000)}`));
    }, options.timeoutMs ?? 10_000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (parseResponses(Buffer.concat(chunks), options.heads).responses.length >= count) finish();
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('error', () => undefined);
  });
}
