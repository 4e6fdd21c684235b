// The arbiter: the process `serve` starts. It probes the ports, spawns the worker process,
// handles signals and supervises. It never loads uWS or the app, so nothing an app does can
// take it down (DESIGN.md: a thread dying with uWS sockets open aborts its whole process).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BootError, EXIT, NarwhalError, type FailureReport } from './errors.js';
import type { Config } from './config.js';
import type { Logger } from './logging.js';
import { probeBinds } from './probe.js';
import { formatAddress, type ArbiterToProcess, type ProcessToArbiter } from './protocol.js';

const WORKER_PROCESS = fileURLToPath(new URL('../workers/process.js', import.meta.url));
/** Beyond the graceful timeout, how long a stopping worker process gets before SIGKILL. */
const KILL_GRACE_MS = 5000;

type Event =
  | { kind: 'signal'; signal: NodeJS.Signals }
  | { kind: 'message'; child: ChildProcess; message: ProcessToArbiter }
  | { kind: 'exit'; child: ChildProcess; code: number | null; signal: NodeJS.Signals | null };

export class Arbiter {
  readonly #log: Logger;
  #config: Config;
  #events: Event[] = [];
  #wake: (() => void) | undefined;
  #child: ChildProcess | undefined;
  #onSignal = (signal: NodeJS.Signals): void => this.#push({ kind: 'signal', signal });

  constructor(config: Config, log: Logger) {
    this.#config = config;
    this.#log = log;
  }

  /** Serves until stopped; resolves to the exit code. */
  async run(): Promise<number> {
    this.#log.info(`Starting narwhal (pid ${process.pid})`);
    // Signal handlers only queue; the loop below acts (gunicorn's rule).
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, this.#onSignal);
    try {
      this.#config = { ...this.#config, bind: await probeBinds(this.#config.bind) };
      return (await this.#spawn()) ? await this.#loop() : EXIT.ok;
    } catch (error) {
      return this.#halt(error);
    } finally {
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.off(signal, this.#onSignal);
    }
  }

  #push(event: Event): void {
    this.#events.push(event);
    this.#wake?.();
  }

  async #next(): Promise<Event> {
    while (this.#events.length === 0) await new Promise<void>((resolve) => (this.#wake = resolve));
    return this.#events.shift()!;
  }

  async #loop(): Promise<number> {
    for (;;) {
      const event = await this.#next();
      if (event.kind === 'signal') return this.#stop(event.signal);
      if (event.kind !== 'exit' || event.child !== this.#child) continue;
      this.#log.error(`Worker process ${event.child.pid} died (${describeExit(event.code, event.signal)}); booting a new one`);
      if (!(await this.#spawn())) return EXIT.ok;
    }
  }

  /** Starts a worker process and waits until all its threads listen; false if a signal came first. */
  async #spawn(): Promise<boolean> {
    const child = fork(WORKER_PROCESS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    this.#child = child;
    this.#log.info(`Booting worker process with pid ${child.pid}`);
    child.on('message', (message: ProcessToArbiter) => this.#push({ kind: 'message', child, message }));
    child.on('exit', (code, signal) => this.#push({ kind: 'exit', child, code, signal }));
    this.#send({ type: 'boot', config: this.#config });
    let failure: FailureReport | undefined;
    for (;;) {
      const event = await this.#next();
      if (event.kind === 'signal') {
        await this.#stop(event.signal);
        return false;
      }
      if (event.child !== child) continue;
      if (event.kind === 'exit') throw failedBoot(failure, event.code, event.signal);
      if (event.message.type === 'failed') failure = event.message.report;
      if (event.message.type !== 'ready') continue;
      const where = this.#config.bind.map(formatAddress).join(', ');
      this.#log.info(`Listening at: ${where} (${event.message.workers} workers, ${event.message.binding})`);
      return true;
    }
  }

  #send(message: ArbiterToProcess): void {
    if (this.#child?.connected) this.#child.send(message);
  }

  /** TERM and INT stop gracefully; a second signal cuts in-flight requests; a third kills. */
  async #stop(signal: NodeJS.Signals): Promise<number> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return EXIT.ok;
    this.#log.info(`Handling signal: ${signal}; shutting down gracefully`);
    this.#send({ type: 'stop', graceful: true });
    const deadline = setTimeout(() => child.kill('SIGKILL'), this.#config.gracefulTimeout * 1000 + KILL_GRACE_MS);
    let forced = 0;
    try {
      for (;;) {
        const event = await this.#next();
        if (event.kind === 'exit' && event.child === child) break;
        if (event.kind !== 'signal') continue;
        forced += 1;
        this.#log.warning(`Handling signal: ${event.signal} again; ${forced === 1 ? 'cutting in-flight requests' : 'killing the worker process'}`);
        if (forced === 1) this.#send({ type: 'stop', graceful: false });
        else child.kill('SIGKILL');
      }
    } finally {
      clearTimeout(deadline);
    }
    this.#log.info('Shutting down: Master');
    return EXIT.ok;
  }

  #halt(error: unknown): number {
    const exitCode = error instanceof NarwhalError ? error.exitCode : EXIT.boot;
    const reason = error instanceof Error ? error.message : String(error);
    this.#log.error(`Shutting down: ${reason}`);
    this.#child?.kill('SIGKILL');
    return exitCode;
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `exit code ${code}`;
}

function failedBoot(report: FailureReport | undefined, code: number | null, signal: NodeJS.Signals | null): NarwhalError {
  if (report) return new NarwhalError(report.code, report.exitCode, `Worker failed to boot: ${firstLine(report.message)}`);
  return new BootError(`Worker process exited before it was ready (${describeExit(code, signal)})`);
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? text;
}
