// The worker process: a child of the arbiter that owns one piscina pool. Each thread of the
// pool runs one long-lived serve task (thread.ts); this process resubmits the task when a thread
// dies, reports readiness and boot failures to the arbiter, and drains the threads when told.
// Piscina settings from DESIGN.md: atomics 'disabled' (the default freezes a thread's event loop
// between tasks), idleTimeout Infinity, min = max threads, never abort or destroy a serve task.
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { EXIT, toFailureReport, type FailureReport } from '../server/errors.js';
import { createLogger, type Logger } from '../server/logging.js';
import type { ArbiterToProcess, ProcessToArbiter, ServeOutcome, ThreadToProcess, WorkerProcessBoot } from '../server/protocol.js';
import { resolveBinding, type Binding } from './binding.js';

const THREAD = new URL('./thread.js', import.meta.url).href;

interface Slot {
  readonly worker: number;
  control: MessagePort | undefined;
  listening: boolean;
  done: Promise<void>;
}

type MessagePort = InstanceType<typeof MessageChannel>['port1'];

class WorkerProcess {
  readonly #config: WorkerProcessBoot['config'];
  readonly #binding: Binding;
  readonly #log: Logger;
  readonly #pool: Piscina;
  readonly #slots: Slot[] = [];
  #ready = false;
  #stopping = false;

  constructor(config: WorkerProcessBoot['config'], binding: Binding, log: Logger) {
    this.#config = config;
    this.#binding = binding;
    this.#log = log;
    this.#pool = new Piscina({
      filename: THREAD,
      minThreads: config.workers,
      maxThreads: config.workers,
      idleTimeout: Infinity,
      atomics: 'disabled',
      concurrentTasksPerWorker: 1,
      // Beyond the graceful timeout: piscina's close must never terminate a thread with sockets.
      closeTimeout: config.gracefulTimeout * 1000 + 60_000,
    });
    this.#pool.on('error', (error: unknown) => log.error('Worker pool error', error));
  }

  start(): void {
    for (let worker = 1; worker <= this.#config.workers; worker++) {
      const slot: Slot = { worker, control: undefined, listening: false, done: Promise.resolve() };
      this.#slots.push(slot);
      this.#submit(slot);
    }
  }

  /** Runs a serve task in whichever thread is free: at start, or the pool's replacement thread. */
  #submit(slot: Slot): void {
    const { port1, port2 } = new MessageChannel();
    slot.control = port1;
    slot.listening = false;
    port1.on('message', (message: ThreadToProcess) => {
      if (message.type !== 'listening') return;
      slot.listening = true;
      this.#log.debug(`Worker ${slot.worker} listening (thread ${message.threadId})`);
      this.#checkReady();
    });
    const task = { config: this.#config, bindingPath: this.#binding.path, worker: slot.worker, control: port2 };
    slot.done = this.#pool.run(task, { transferList: [port2] as never }).then(
      (outcome: ServeOutcome) => this.#ended(slot, outcome),
      (error: unknown) => this.#died(slot, error),
    );
  }

  #checkReady(): void {
    if (this.#ready || !this.#slots.every((slot) => slot.listening)) return;
    this.#ready = true;
    send({ type: 'ready', workers: this.#slots.length, binding: `${this.#binding.name} ${this.#binding.version}` });
  }

  #ended(slot: Slot, outcome: ServeOutcome): void {
    slot.control?.close();
    slot.listening = false;
    if (outcome.outcome === 'failed') void this.#fail(outcome.report);
    else if (!this.#stopping) this.#log.warning(`Worker ${slot.worker} stopped unasked; starting it again`);
    if (outcome.outcome === 'stopped' && !this.#stopping) this.#submit(slot);
  }

  #died(slot: Slot, error: unknown): void {
    slot.control?.close();
    slot.listening = false;
    if (this.#stopping) return;
    this.#log.error(`Worker ${slot.worker} exited (${error instanceof Error ? error.message : String(error)}); starting a new one`);
    this.#submit(slot);
  }

  /** A thread could not boot: report it, stop the others, exit with the failure's code. */
  async #fail(report: FailureReport): Promise<void> {
    if (this.#stopping) return;
    this.#log.error(report.message);
    send({ type: 'failed', report });
    await this.stop(0);
    process.exit(report.exitCode);
  }

  /** Drains every thread (cutting in-flight requests after timeoutMs), then closes the pool. */
  async stop(timeoutMs: number): Promise<void> {
    const first = !this.#stopping;
    this.#stopping = true;
    for (const slot of this.#slots) slot.control?.postMessage({ type: 'drain', timeoutMs });
    if (!first) return;
    // A drained thread's task resolves only once its sockets are closed; then closing is safe.
    // Nothing is resubmitted once stopping, so these are the last tasks.
    await Promise.all(this.#slots.map((slot) => slot.done));
    await this.#pool.close();
  }
}

function send(message: ProcessToArbiter): void {
  if (process.connected) process.send?.(message);
}

async function boot(message: WorkerProcessBoot): Promise<WorkerProcess> {
  const { config } = message;
  const log = createLogger(config.logLevel);
  let binding: Binding;
  try {
    binding = resolveBinding();
  } catch (error) {
    const report = toFailureReport(error);
    log.error(report.message);
    send({ type: 'failed', report });
    process.exit(report.exitCode);
  }
  const worker = new WorkerProcess(config, binding, log);
  worker.start();
  return worker;
}

// The arbiter decides about signals; the worker process hears them only because it shares the
// terminal's process group (Ctrl-C), so it ignores them and waits for the arbiter's word.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);

let running: { worker: Promise<WorkerProcess>; graceMs: number } | undefined;

async function stop(timeoutMs: number): Promise<void> {
  if (!running) process.exit(EXIT.ok);
  const worker = await running.worker;
  await worker.stop(timeoutMs);
  process.exit(EXIT.ok);
}

process.on('message', (message: ArbiterToProcess) => {
  if (message.type === 'boot' && !running) {
    running = { worker: boot(message), graceMs: message.config.gracefulTimeout * 1000 };
  } else if (message.type === 'stop') {
    void stop(message.graceful && running ? running.graceMs : 0);
  }
});
// The arbiter is gone: nobody supervises this process any more, so stop gracefully.
process.on('disconnect', () => void stop(running?.graceMs ?? 0));
