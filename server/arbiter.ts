// The arbiter: the process `serve` starts. It probes the ports, spawns and supervises the worker
// processes, and acts on signals. It never loads uWS or the app, so nothing an app does can
// take it down (DESIGN.md: a thread dying with uWS sockets open aborts its whole process).
//
// Signal handlers only queue; one loop acts on signals, worker messages and exits (gunicorn's
// rule). Workers are started as a *generation* of worker processes: at boot, on HUP (reload)
// and on TTIN/TTOU (one worker more or fewer). A new generation takes traffic next to the old
// one, and only once every new worker listens is the old generation drained, so nothing is
// dropped; if the new one fails to boot, the old one keeps serving.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BootError, EXIT, NarwhalError, type FailureReport } from './errors.js';
import type { Config } from './config.js';
import type { HookContext, ServerHooks } from './config-file.js';
import type { Logger } from './logging.js';
import type { Bind } from './settings.js';
import { probeBinds } from './probe.js';
import { formatAddress, type ArbiterToProcess, type ProcessToArbiter } from './protocol.js';

const WORKER_PROCESS = fileURLToPath(new URL('../workers/process.js', import.meta.url));
/** Beyond the graceful timeout, how long a stopping worker process gets before SIGKILL. */
const KILL_GRACE_MS = 5000;
/** A worker process that fails this often within the window means a crash loop: halt. */
const CRASH_LOOP = { failures: 5, windowMs: 60_000 };
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGTTIN', 'SIGTTOU', 'SIGUSR1'] as const;

interface Proc {
  readonly child: ChildProcess;
  /** Which share of the workers this process holds (0 .. processes-1). */
  readonly slot: number;
  readonly config: Config;
  readonly generation: number;
  ready: boolean;
  retiring: boolean;
  failure?: FailureReport;
  /** The process this one replaces once it is ready (after a hang or a crash). */
  replaces?: Proc | undefined;
  killTimer?: NodeJS.Timeout;
}

interface Pending {
  readonly generation: number;
  readonly purpose: 'boot' | 'reload';
  /** The config to go back to if this generation fails to boot. */
  readonly previous: Config;
}

type Event =
  | { kind: 'signal'; signal: NodeJS.Signals }
  | { kind: 'message'; proc: Proc; message: ProcessToArbiter }
  | { kind: 'exit'; proc: Proc; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'respawn'; slot: number; generation: number; replaces?: Proc | undefined; timer: NodeJS.Timeout }
  | { kind: 'reload'; signal: NodeJS.Signals };

/** Spreads `workers` over `processes`; returns [count, firstWorker] per process. */
export function shares(workers: number, processes: number): [number, number][] {
  const count = Math.min(workers, processes);
  const out: [number, number][] = [];
  let first = 1;
  for (let slot = 0; slot < count; slot++) {
    const share = Math.floor(workers / count) + (slot < workers % count ? 1 : 0);
    out.push([share, first]);
    first += share;
  }
  return out;
}

export interface ArbiterOptions {
  /** The server hooks in force (they change when a reload re-reads the config file). */
  readonly hooks?: () => ServerHooks;
  /** Reads flags, environment and config file again, for HUP. */
  readonly reloadConfig?: () => Promise<Config>;
}

export class Arbiter {
  readonly #log: Logger;
  readonly #options: ArbiterOptions;
  #config: Config;
  #generation = 0;
  #procs = new Set<Proc>();
  /** The generation being started and what it is for, until all of it is ready. */
  #pending: Pending | undefined;
  /** Respawns waiting out their back-off. */
  #scheduled = new Set<NodeJS.Timeout>();
  #stopping: 'graceful' | 'quick' | 'kill' | undefined;
  #failures: number[] = [];
  #exitCode: number = EXIT.ok;
  #events: Event[] = [];
  #wake: (() => void) | undefined;
  #onSignal = (signal: NodeJS.Signals): void => this.#push({ kind: 'signal', signal });

  constructor(config: Config, log: Logger, options: ArbiterOptions = {}) {
    this.#config = config;
    this.#log = log;
    this.#options = options;
  }

  /** Runs a server hook; a hook that throws is logged and never stops the arbiter. */
  async #hook<K extends keyof ServerHooks>(name: K, context: Parameters<NonNullable<ServerHooks[K]>>[0]): Promise<void> {
    const hook = this.#options.hooks?.()[name] as ((context: HookContext) => unknown) | undefined;
    if (!hook) return;
    try {
      await hook(context);
    } catch (error) {
      this.#log.error(`The ${name} hook failed`, error);
    }
  }

  /** Serves until stopped; resolves to the exit code. */
  async run(): Promise<number> {
    this.#log.info(`Starting narwhal (pid ${process.pid})`);
    for (const signal of SIGNALS) process.on(signal, this.#onSignal);
    try {
      await this.#hook('onStarting', { config: this.#config });
      this.#config = { ...this.#config, bind: await probeBinds(this.#config.bind, this.#config.workers) };
      if (this.#config.pid) writeFileSync(this.#config.pid, `${process.pid}\n`);
      warnAboutQueuedResets(this.#log);
      this.#startGeneration('boot', this.#config);
      while (this.#procs.size > 0 || this.#pending || this.#scheduled.size > 0) {
        const event = await this.#next();
        if (event.kind === 'signal') this.#onSignalEvent(event.signal);
        else if (event.kind === 'message') this.#onMessage(event.proc, event.message);
        else if (event.kind === 'exit') this.#onExit(event.proc, event.code, event.signal);
        else if (event.kind === 'reload') await this.#reload(event.signal);
        else this.#onRespawn(event);
      }
      this.#log.info('Shutting down: Master');
    } catch (error) {
      this.#exitCode = this.#halt(error);
    }
    try {
      await this.#hook('onExit', { config: this.#config, exitCode: this.#exitCode });
      return this.#exitCode;
    } finally {
      for (const signal of SIGNALS) process.off(signal, this.#onSignal);
      for (const timer of this.#scheduled) clearTimeout(timer);
      for (const proc of this.#procs) clearTimeout(proc.killTimer);
      if (this.#config.pid) rmSync(this.#config.pid, { force: true });
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

  #startGeneration(purpose: 'boot' | 'reload', config: Config): void {
    const previous = this.#config;
    this.#generation += 1;
    this.#config = config;
    this.#pending = { generation: this.#generation, purpose, previous };
    shares(config.workers, config.processes).forEach((_, slot) => this.#spawn(slot, config, this.#generation));
  }

  #spawn(slot: number, config: Config, generation: number, replaces?: Proc): void {
    const [workers, firstWorker] = shares(config.workers, config.processes)[slot] ?? [1, 1];
    const child = fork(WORKER_PROCESS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    const proc: Proc = { child, slot, config, generation, ready: false, retiring: false, replaces };
    this.#procs.add(proc);
    this.#log.info(`Booting worker process with pid ${child.pid} (workers ${firstWorker}-${firstWorker + workers - 1})`);
    child.on('message', (message: ProcessToArbiter) => this.#push({ kind: 'message', proc, message }));
    child.on('exit', (code, signal) => this.#push({ kind: 'exit', proc, code, signal }));
    this.#send(proc, { type: 'boot', config: { ...config, workers }, firstWorker });
  }

  #send(proc: Proc, message: ArbiterToProcess): void {
    if (proc.child.connected) proc.child.send(message);
  }

  #onMessage(proc: Proc, message: ProcessToArbiter): void {
    if (message.type === 'failed') proc.failure = message.report;
    else if (message.type === 'drained') this.#kill(proc, 'its healthy workers drained; the hung one cannot be ended otherwise');
    else if (message.type === 'hung') this.#onHung(proc, message);
    else this.#onReady(proc, `${message.workers} workers, ${message.binding}`);
  }

  #onReady(proc: Proc, what: string): void {
    proc.ready = true;
    const pending = this.#pending;
    if (!pending || proc.generation !== pending.generation) {
      this.#log.info(`Worker process ${proc.child.pid} is up (${what})${proc.replaces ? `; retiring ${proc.replaces.child.pid}` : ''}`);
      if (proc.replaces) this.#retire(proc.replaces, true);
      proc.replaces = undefined;
      return;
    }
    const generation = [...this.#procs].filter((p) => p.generation === pending.generation);
    if (!generation.every((p) => p.ready)) return;
    this.#pending = undefined;
    const where = this.#config.bind.map(formatAddress).join(', ');
    const total = this.#config.workers;
    const processes = `${generation.length} process${generation.length > 1 ? 'es' : ''}`;
    if (pending.purpose === 'boot') {
      this.#log.info(`Listening at: ${where} (${total} workers in ${processes}, ${what.replace(/^\d+ workers, /, '')})`);
      void this.#hook('whenReady', { config: this.#config });
    }
    else this.#log.info(`Reloaded: ${total} new workers listen at ${where}; draining the old ones`);
    for (const old of this.#procs) if (old.generation < pending.generation) this.#retire(old, true);
  }

  #onHung(proc: Proc, message: { worker: number; request: string; silentMs: number }): void {
    const on = message.request ? `while running '${message.request}'` : 'between requests';
    this.#log.critical(`Worker ${message.worker} (pid ${proc.child.pid}) sent no heartbeat for ${(message.silentMs / 1000).toFixed(1)} s ${on}; replacing its process`);
    if (this.#stopping || proc.retiring || [...this.#procs].some((p) => p.replaces === proc)) return;
    this.#spawn(proc.slot, proc.config, proc.generation, proc);
  }

  #onExit(proc: Proc, code: number | null, signal: NodeJS.Signals | null): void {
    this.#procs.delete(proc);
    clearTimeout(proc.killTimer);
    void this.#hook('workerExit', { config: proc.config, pid: proc.child.pid ?? 0, code, signal });
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    if (proc.retiring || this.#stopping) {
      this.#log.info(`Worker process ${proc.child.pid} exited (${how})`);
      return;
    }
    const pending = this.#pending;
    if (!proc.ready && pending?.generation === proc.generation) {
      this.#abandon(pending, failedBoot(proc.failure, code, signal));
      return;
    }
    this.#log.error(`Worker process ${proc.child.pid} died (${how}); booting a new one`);
    this.#respawnLater(proc, proc.ready ? new BootError(`worker process ${proc.child.pid} died (${how})`) : failedBoot(proc.failure, code, signal));
  }

  /** A generation failed to boot: at start that halts; on reload the old workers keep serving. */
  #abandon(pending: Pending, error: NarwhalError): void {
    for (const p of this.#procs) if (p.generation === pending.generation) this.#kill(p, 'its generation failed to boot');
    this.#pending = undefined;
    if (pending.purpose === 'boot') throw error;
    this.#config = pending.previous;
    this.#log.error(`Reload failed, the old workers keep serving: ${error.message}`);
  }

  /** Restarts a slot after a crash, backing off; a crash loop halts instead of spinning. */
  #respawnLater(proc: Proc, error: NarwhalError): void {
    const now = Date.now();
    this.#failures = [...this.#failures.filter((at) => now - at < CRASH_LOOP.windowMs), now];
    if (this.#failures.length >= CRASH_LOOP.failures) {
      throw new BootError(`Worker processes failed ${this.#failures.length} times within ${CRASH_LOOP.windowMs / 1000} s; last: ${error.message}`);
    }
    const delayMs = Math.min(10_000, 100 * 2 ** (this.#failures.length - 1));
    const replaces = proc.replaces;
    const timer = setTimeout(() => this.#push({ kind: 'respawn', slot: proc.slot, generation: proc.generation, replaces, timer }), delayMs);
    this.#scheduled.add(timer);
  }

  #onRespawn(event: Event & { kind: 'respawn' }): void {
    this.#scheduled.delete(event.timer);
    const sibling = [...this.#procs].find((p) => p.generation === event.generation);
    // A generation that was reloaded away meanwhile needs no replacement.
    if (this.#stopping || (!sibling && event.generation !== this.#generation)) return;
    this.#spawn(event.slot, sibling?.config ?? this.#config, event.generation, event.replaces);
  }

  /** Drains a worker process: gracefully (up to --graceful-timeout), or cutting in-flight requests. */
  #retire(proc: Proc, graceful: boolean): void {
    proc.retiring = true;
    this.#send(proc, { type: 'stop', graceful });
    clearTimeout(proc.killTimer);
    const graceMs = graceful ? proc.config.gracefulTimeout * 1000 : 0;
    proc.killTimer = setTimeout(() => this.#kill(proc, 'it did not stop in time'), graceMs + KILL_GRACE_MS);
    proc.killTimer.unref();
  }

  #kill(proc: Proc, why: string): void {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    this.#log.warning(`Killing worker process ${proc.child.pid}: ${why}`);
    proc.retiring = true;
    proc.child.kill('SIGKILL');
  }

  #onSignalEvent(signal: NodeJS.Signals): void {
    if (signal === 'SIGTERM' || signal === 'SIGINT' || signal === 'SIGQUIT') return this.#stop(signal);
    if (this.#stopping) return;
    if (signal === 'SIGUSR1') {
      this.#log.info('Handling signal: SIGUSR1; reopening log files');
      this.#log.reopen();
      for (const proc of this.#procs) this.#send(proc, { type: 'reopen' });
    } else if (this.#pending) {
      this.#log.warning(`Handling signal: ${signal}; ignored, a reload is already under way`);
    } else {
      // Reloading reads the config file, which takes a turn of the loop: queue it as an event.
      this.#push({ kind: 'reload', signal });
    }
  }

  /** HUP: config and app code anew. TTIN / TTOU: one worker more / fewer. */
  async #reload(signal: NodeJS.Signals): Promise<void> {
    if (this.#stopping || this.#pending) return;
    let config = this.#config;
    if (signal === 'SIGHUP') {
      this.#log.info('Handling signal: SIGHUP; reloading the config and the app');
      try {
        config = (await this.#options.reloadConfig?.()) ?? config;
      } catch (error) {
        this.#log.error(`Reload failed, the old workers keep serving: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
      if (!sameBinds(config.bind, this.#config.bind)) {
        this.#log.warning('A changed bind takes a restart; the reload keeps the current addresses');
      }
      config = { ...config, bind: this.#config.bind };
    } else {
      const workers = Math.max(1, this.#config.workers + (signal === 'SIGTTIN' ? 1 : -1));
      if (workers === this.#config.workers) return this.#log.info(`Handling signal: ${signal}; already at 1 worker`);
      this.#log.info(`Handling signal: ${signal}; going from ${this.#config.workers} to ${workers} workers`);
      config = { ...this.#config, workers };
    }
    await this.#hook('onReload', { config });
    this.#startGeneration('reload', config);
  }

  /** TERM: graceful stop. INT, QUIT: quick stop. The same again escalates; a third kills. */
  #stop(signal: NodeJS.Signals): void {
    const level = !this.#stopping ? (signal === 'SIGTERM' ? 'graceful' : 'quick') : this.#stopping === 'graceful' ? 'quick' : 'kill';
    this.#stopping = level;
    this.#pending = undefined;
    const what = { graceful: 'shutting down gracefully', quick: 'shutting down now, cutting in-flight requests', kill: 'killing the worker processes' }[level];
    this.#log[level === 'graceful' ? 'info' : 'warning'](`Handling signal: ${signal}; ${what}`);
    for (const proc of this.#procs) {
      if (level === 'kill') this.#kill(proc, 'asked to stop three times');
      else this.#retire(proc, level === 'graceful');
    }
  }

  #halt(error: unknown): number {
    const exitCode = error instanceof NarwhalError ? error.exitCode : EXIT.boot;
    const reason = error instanceof Error ? error.message : String(error);
    this.#log.error(`Shutting down: ${reason}`);
    for (const proc of this.#procs) proc.child.kill('SIGKILL');
    return exitCode;
  }
}

/**
 * Linux resets connections still queued on a SO_REUSEPORT listener when it closes, unless
 * net.ipv4.tcp_migrate_req hands them to a sibling (measured: 7 of 54k requests reset at 0,
 * none at 1). Every reload, recycle and scale-down closes listeners.
 */
function warnAboutQueuedResets(log: Logger): void {
  let value: string;
  try {
    value = readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
  } catch {
    return; // not Linux, or a kernel before 5.14
  }
  if (value === '0') {
    log.warning('net.ipv4.tcp_migrate_req is 0: a reload or recycle can reset connections still queued on a closing worker. Fix: sysctl -w net.ipv4.tcp_migrate_req=1');
  }
}

/** Whether a reloaded config binds where the running one does (port 0 became concrete at boot). */
function sameBinds(next: readonly Bind[], current: readonly Bind[]): boolean {
  const key = (bind: Bind): string => ('unix' in bind ? bind.unix : `${bind.host}:${bind.port}`);
  return next.length === current.length && next.every((bind, i) => key(bind) === key(current[i]!) || ('port' in bind && bind.port === 0));
}

function failedBoot(report: FailureReport | undefined, code: number | null, signal: NodeJS.Signals | null): NarwhalError {
  if (report) return new NarwhalError(report.code, report.exitCode, `Worker failed to boot: ${report.message.split('\n', 1)[0]}`);
  return new BootError(`Worker process exited before it was ready (${signal ? `signal ${signal}` : `exit code ${code}`})`);
}
