// The piscina task each worker thread runs for its whole life: load the binding and the app,
// run the startup hook, listen, serve until told to drain, run the shutdown hook, resolve.
// The task resolves only after every uWS socket of the thread is closed (DESIGN.md).
import { threadId } from 'node:worker_threads';
import { AppLoadError, toFailureReport } from '../server/errors.js';
import { createLogger, type Logger } from '../server/logging.js';
import type { ProcessToThread, ServeOutcome, ServeTask, ThreadToProcess } from '../server/protocol.js';
import { loadApp, type App } from './app.js';
import { loadBinding } from './binding.js';
import { installFastResponse } from './response.js';
import { HttpServer } from './server.js';

/** The exit code of a thread that ended itself after an uncaught error (EX_SOFTWARE). */
export const CRASH_EXIT = 70;

async function runHook(app: App, name: 'startup' | 'shutdown'): Promise<void> {
  const hook = app[name];
  if (!hook) return;
  try {
    await hook();
  } catch (error) {
    throw new AppLoadError(`The app's ${name} hook failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
}

async function boot(task: ServeTask, log: Logger): Promise<{ app: App; server: HttpServer }> {
  const uws = loadBinding(task.bindingPath);
  uws._cfg?.('silent'); // per thread: drops the `uWebSockets: 20` response header
  installFastResponse(); // before the app loads, so it builds light responses
  const app = await loadApp(task.config.app);
  await runHook(app, 'startup');
  const server = new HttpServer(uws, app, log);
  try {
    server.listen(task.config.bind);
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
    server.drain(graceMs);
    void server.closed.then(() => process.exit(CRASH_EXIT));
  };
  process.on('uncaughtException', crash('Uncaught exception'));
  process.on('unhandledRejection', crash('Unhandled rejection'));
}

export default async function serve(task: ServeTask): Promise<ServeOutcome> {
  const { config, control, worker } = task;
  const log = createLogger(config.logLevel, `${process.pid}:w${worker}`);
  let booted: { app: App; server: HttpServer };
  try {
    booted = await boot(task, log);
  } catch (error) {
    control.close();
    return { outcome: 'failed', report: toFailureReport(error) };
  }
  const { app, server } = booted;
  exitOnCrash(server, log, config.gracefulTimeout * 1000);
  control.on('message', (message: ProcessToThread) => {
    if (message.type === 'drain') server.drain(message.timeoutMs);
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
