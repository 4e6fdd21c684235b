// The piscina task each worker thread runs for its whole life: load the binding and the app,
// run the startup hook, listen, serve until told to drain, run the shutdown hook, resolve.
// The task resolves only after every uWS socket of the thread is closed (DESIGN.md).
import { getHeapStatistics } from 'node:v8';
import { threadId } from 'node:worker_threads';
import { AppLoadError, toFailureReport } from '../server/errors.js';
import { createLogger, type Logger } from '../server/logging.js';
import type { ProcessToThread, ServeOutcome, ServeTask, ThreadToProcess } from '../server/protocol.js';
import { loadApp, type App } from './app.js';
import { loadBinding } from './binding.js';
import { installFastResponse } from './response.js';
import { AccessLog } from './access-log.js';
import { ProxyTrust } from './forwarded.js';
import { Heartbeat } from './heartbeat.js';
import { HttpServer } from './server.js';

/** The exit code of a thread that ended itself after an uncaught error (EX_SOFTWARE). */
export const CRASH_EXIT = 70;
/** The exit code of a thread that ended itself to be recycled. */
export const RECYCLE_EXIT = 71;

/** Ends the thread once its server has closed; the pool starts a fresh thread in its place. */
function endThreadAfter(server: HttpServer, graceMs: number, code: number): void {
  server.drain(graceMs);
  void server.closed.then(() => process.exit(code));
}

async function runHook(app: App, name: 'startup' | 'shutdown'): Promise<void> {
  const hook = app[name];
  if (!hook) return;
  try {
    await hook();
  } catch (error) {
    throw new AppLoadError(`The app's ${name} hook failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
}

async function boot(task: ServeTask, log: Logger, recycle: (reason: string) => void): Promise<{ app: App; server: HttpServer }> {
  const { config } = task;
  const uws = loadBinding(task.bindingPath);
  uws._cfg?.('silent'); // per thread: drops the `uWebSockets: 20` response header
  installFastResponse(); // before the app loads, so it builds light responses
  const app = await loadApp(config.app);
  await runHook(app, 'startup');
  // Each worker draws its own limit, so workers do not all recycle at the same moment.
  const maxRequests = config.maxRequests > 0 ? config.maxRequests + Math.floor(Math.random() * (config.maxRequestsJitter + 1)) : 0;
  const server = new HttpServer(uws, app, log, {
    heartbeat: config.timeout > 0 ? new Heartbeat(task.heartbeat) : undefined,
    trust: new ProxyTrust(config.forwardedAllowIps),
    proxyProtocol: config.proxyProtocol,
    access: config.accessLog ? new AccessLog(config.accessLog, config.accessLogFormat, config.logFormat === 'json') : undefined,
    limits: { body: config.limitRequestBody, fields: config.limitRequestFields, fieldSize: config.limitRequestFieldSize },
    maxConcurrency: config.limitConcurrency,
    maxRequests,
    onLimit: () => recycle(`served its ${maxRequests} requests (--max-requests)`),
  });
  try {
    server.listen(config.bind, task.worker, config.umask);
  } catch (error) {
    server.close();
    throw error;
  }
  return { app, server };
}

/**
 * An uncaught error leaves the thread in an unknown state: stop taking connections, let what is
 * in flight finish, close every socket, then end the thread so the pool starts a fresh one.
 */
function exitOnCrash(server: HttpServer, log: Logger, graceMs: number): void {
  const crash = (kind: string) => (error: unknown) => {
    log.critical(`${kind} in worker thread ${threadId}; draining it and starting a new one`, error);
    endThreadAfter(server, graceMs, CRASH_EXIT);
  };
  process.on('uncaughtException', crash('Uncaught exception'));
  process.on('unhandledRejection', crash('Unhandled rejection'));
}

/** Beats the heartbeat and checks the heap (--max-worker-memory) on a timer that never holds the thread open. */
function startWatch(task: ServeTask, recycle: (reason: string) => void): NodeJS.Timeout {
  const { timeout, maxWorkerMemory } = task.config;
  const heartbeat = new Heartbeat(task.heartbeat);
  const everyMs = timeout > 0 ? Math.min(1000, (timeout * 1000) / 4) : 1000;
  const timer = setInterval(() => {
    heartbeat.beat();
    const { used_heap_size: heap, external_memory: external } = getHeapStatistics() as ReturnType<typeof getHeapStatistics> & { external_memory: number };
    const heapMb = (heap + external) / 1048576; // typed arrays and Buffers live outside the heap proper
    if (maxWorkerMemory > 0 && heapMb > maxWorkerMemory) recycle(`uses ${Math.round(heapMb)} MB of memory (--max-worker-memory ${maxWorkerMemory})`);
  }, everyMs);
  timer.unref();
  return timer;
}

export default async function serve(task: ServeTask): Promise<ServeOutcome> {
  const { config, control, worker } = task;
  const log = createLogger(config, `${process.pid}:w${worker}`);
  const graceMs = config.gracefulTimeout * 1000;
  let booted: { app: App; server: HttpServer } | undefined;
  let recycling = false;
  // The worker keeps serving until its successor listens; the worker process then drains it.
  const recycle = (reason: string): void => {
    if (recycling || !booted) return;
    recycling = true;
    control.postMessage({ type: 'recycle', reason } satisfies ThreadToProcess);
  };
  try {
    booted = await boot(task, log, recycle);
  } catch (error) {
    control.close();
    return { outcome: 'failed', report: toFailureReport(error) };
  }
  const { app, server } = booted;
  exitOnCrash(server, log, graceMs);
  const watch = startWatch(task, recycle);
  void server.closed.then(() => clearInterval(watch));
  control.on('message', (message: ProcessToThread) => {
    if (message.type === 'reopen') {
      log.reopen();
      server.access?.reopen();
      log.debug(`Worker ${worker} reopened its log files`);
      return;
    }
    if (message.exit) endThreadAfter(server, message.timeoutMs, RECYCLE_EXIT);
    else server.drain(message.timeoutMs);
  });
  control.postMessage({ type: 'listening', threadId } satisfies ThreadToProcess);
  await server.closed;
  try {
    await runHook(app, 'shutdown');
  } catch (error) {
    log.error(`Worker ${worker}: the shutdown hook failed`, error);
  }
  control.close();
  return { outcome: 'stopped', requests: server.requests };
}
