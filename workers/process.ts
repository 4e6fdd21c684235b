// The worker process: a child of the arbiter that owns one piscina pool. Each thread of the
// pool runs one long-lived serve task (thread.ts); this process resubmits the task when a thread
// dies, reports readiness and boot failures to the arbiter, and drains the threads when told.
// Piscina settings from DESIGN.md: atomics 'disabled' (the default freezes a thread's event loop
// between tasks), idleTimeout Infinity, never abort or destroy a serve task. minThreads is the
// worker count and maxThreads one more: the spare thread is where a recycled worker's successor
// starts.
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { EXIT, toFailureReport, type FailureReport } from '../server/errors.js';
import { createLogger, type Logger } from '../server/logging.js';
import type { ArbiterToProcess, ProcessToArbiter, ServeOutcome, ThreadToProcess, WorkerProcessBoot } from '../server/protocol.js';
import { resolveBinding, type Binding } from './binding.js';
import { Heartbeat } from './heartbeat.js';

const THREAD = new URL('./thread.js', import.meta.url).href;

interface Slot {
  readonly worker: number;
  readonly heartbeat: SharedArrayBuffer;
  control: MessagePort | undefined;
  listening: boolean;
  /** Being replaced by a successor thread (--max-requests, --max-worker-memory): do not resubmit. */
  recycling: string | undefined;
  /** Missed its heartbeats: no code of ours runs in it any more. */
  hung: boolean;
  /** For a recycled worker's successor: the slot it replaces once it listens. */
  predecessor?: Slot | undefined;
  done: Promise<void>;
}

type MessagePort = InstanceType<typeof MessageChannel>['port1'];

class WorkerProcess {
  readonly #config: WorkerProcessBoot['config'];
  readonly #binding: Binding;
  readonly #log: Logger;
  readonly #pool: Piscina;
  readonly #slots: Slot[] = [];
  /** Recycled workers whose old threads are still draining. */
  readonly #old = new Set<Slot>();
  /** Workers waiting to be recycled: one at a time, as the pool has one spare thread. */
  readonly #recycleQueue: { slot: Slot; reason: string }[] = [];
  readonly #firstWorker: number;
  #ready = false;
  #stopping = false;

  constructor(config: WorkerProcessBoot['config'], firstWorker: number, binding: Binding, log: Logger) {
    this.#config = config;
    this.#firstWorker = firstWorker;
    this.#binding = binding;
    this.#log = log;
    this.#pool = new Piscina({
      filename: THREAD,
      minThreads: config.workers,
      // One spare: a recycled worker's successor starts on it before the old one drains.
      maxThreads: config.workers + 1,
      idleTimeout: Infinity,
      atomics: 'disabled',
      concurrentTasksPerWorker: 1,
      // Beyond the graceful timeout: piscina's close must never terminate a thread with sockets.
      closeTimeout: config.gracefulTimeout * 1000 + 60_000,
    });
    this.#pool.on('error', (error: unknown) => log.error('Worker pool error', error));
  }

  start(): void {
    for (let i = 0; i < this.#config.workers; i++) {
      const slot = newSlot(this.#firstWorker + i);
      this.#slots.push(slot);
      this.#submit(slot);
    }
    if (this.#config.timeout > 0) setInterval(() => this.#checkHeartbeats(), 250).unref();
  }

  /** A worker whose heartbeat is older than --timeout is hung: tell the arbiter, which replaces this process. */
  #checkHeartbeats(): void {
    const limitMs = this.#config.timeout * 1000;
    for (const slot of this.#slots) {
      if (!slot.listening || slot.hung) continue;
      const heartbeat = new Heartbeat(slot.heartbeat);
      const silentMs = heartbeat.silence();
      if (silentMs <= limitMs) continue;
      slot.hung = true;
      send({ type: 'hung', worker: slot.worker, request: heartbeat.request(), silentMs });
    }
  }

  /** Runs a serve task in whichever thread is free: at start, or the pool's replacement thread. */
  #submit(slot: Slot): void {
    const { port1, port2 } = new MessageChannel();
    slot.control = port1;
    slot.listening = false;
    slot.recycling = undefined;
    new Heartbeat(slot.heartbeat).beat(); // booting counts as alive
    port1.on('message', (message: ThreadToProcess) => {
      if (message.type === 'recycle') return this.#recycle(slot, message.reason);
      slot.listening = true;
      this.#log.debug(`Worker ${slot.worker} listening (thread ${message.threadId})`);
      this.#checkReady();
      if (slot.predecessor) this.#retire(slot);
    });
    const task = { config: this.#config, bindingPath: this.#binding.path, worker: slot.worker, control: port2, heartbeat: slot.heartbeat };
    slot.done = this.#pool.run(task, { transferList: [port2] as never }).then(
      (outcome: ServeOutcome) => this.#ended(slot, outcome),
      (error: unknown) => this.#died(slot, error),
    );
  }

  /**
   * Recycling without a gap: the successor starts on the pool's spare thread, and the old worker
   * drains (then ends its thread) only once the successor listens.
   */
  #recycle(slot: Slot, reason: string): void {
    if (slot.recycling || this.#stopping || this.#recycleQueue.some((queued) => queued.slot === slot)) return;
    this.#recycleQueue.push({ slot, reason });
    this.#nextRecycle();
  }

  #nextRecycle(): void {
    if (this.#old.size > 0 || this.#stopping) return;
    const next = this.#recycleQueue.shift();
    if (!next) return;
    const { slot, reason } = next;
    if (!this.#slots.includes(slot) || !slot.listening) return this.#nextRecycle();
    slot.recycling = reason;
    this.#log.info(`Worker ${slot.worker} ${reason}; recycling it`);
    const successor = newSlot(slot.worker);
    successor.predecessor = slot;
    this.#old.add(slot);
    this.#slots[this.#slots.indexOf(slot)] = successor;
    this.#submit(successor);
  }

  #retire(successor: Slot): void {
    const old = successor.predecessor!;
    successor.predecessor = undefined;
    this.#log.info(`Worker ${old.worker} recycled: its successor listens, draining the old thread`);
    old.control?.postMessage({ type: 'drain', timeoutMs: this.#config.gracefulTimeout * 1000, exit: true });
  }

  #checkReady(): void {
    if (this.#ready || !this.#slots.every((slot) => slot.listening)) return;
    this.#ready = true;
    send({ type: 'ready', workers: this.#slots.length, binding: `${this.#binding.name} ${this.#binding.version}` });
  }

  #ended(slot: Slot, outcome: ServeOutcome): void {
    slot.control?.close();
    slot.listening = false;
    if (this.#old.delete(slot)) return this.#nextRecycle();
    if (outcome.outcome === 'failed' && slot.predecessor) {
      // The successor could not boot: the old worker keeps serving.
      this.#log.error(`Worker ${slot.worker} could not be recycled: ${outcome.report.message}`);
      const old = slot.predecessor;
      old.recycling = undefined;
      this.#old.delete(old);
      this.#slots[this.#slots.indexOf(slot)] = old;
      this.#nextRecycle();
      return;
    }
    if (outcome.outcome === 'failed') void this.#fail(outcome.report);
    else if (!this.#stopping) this.#log.warning(`Worker ${slot.worker} stopped unasked; starting it again`);
    else this.#log.info(`Worker ${slot.worker} stopped after serving ${outcome.requests} requests`);
    if (outcome.outcome === 'stopped' && !this.#stopping) this.#submit(slot);
  }

  #died(slot: Slot, error: unknown): void {
    slot.control?.close();
    slot.listening = false;
    if (this.#stopping) return;
    if (this.#old.delete(slot)) {
      // Its successor already serves in its place (or is starting, and serves if this ended early).
      this.#log.info(`Worker ${slot.worker}'s old thread has ended`);
      this.#nextRecycle();
      return;
    }
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

  /** USR1: this process's error log and every thread's logs open their files again. */
  reopen(): void {
    this.#log.reopen();
    for (const slot of [...this.#slots, ...this.#old]) slot.control?.postMessage({ type: 'reopen' });
  }

  /** Drains every thread (cutting in-flight requests after timeoutMs), then closes the pool. */
  async stop(timeoutMs: number): Promise<void> {
    const first = !this.#stopping;
    this.#stopping = true;
    const all = [...this.#slots, ...this.#old];
    for (const slot of all) slot.control?.postMessage({ type: 'drain', timeoutMs });
    if (!first) return;
    // A drained thread's task resolves only once its sockets are closed; then closing is safe.
    // Nothing is resubmitted once stopping, so these are the last tasks. A hung thread never
    // drains and cannot be ended without aborting the process: the arbiter kills the process.
    await Promise.all(all.filter((slot) => !slot.hung).map((slot) => slot.done));
    if (all.some((slot) => slot.hung)) {
      send({ type: 'drained' });
      await new Promise(() => undefined);
    }
    await this.#pool.close();
  }
}

function newSlot(worker: number): Slot {
  return { worker, heartbeat: Heartbeat.create(), control: undefined, listening: false, recycling: undefined, hung: false, done: Promise.resolve() };
}

function send(message: ProcessToArbiter): void {
  if (process.connected) process.send?.(message);
}

async function boot(message: WorkerProcessBoot): Promise<WorkerProcess> {
  const { config, firstWorker } = message;
  const log = createLogger(config);
  let binding: Binding;
  try {
    binding = resolveBinding();
  } catch (error) {
    const report = toFailureReport(error);
    log.error(report.message);
    send({ type: 'failed', report });
    process.exit(report.exitCode);
  }
  const worker = new WorkerProcess(config, firstWorker, binding, log);
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
  } else if (message.type === 'reopen') {
    void running?.worker.then((worker) => worker.reopen());
  } else if (message.type === 'stop') {
    void stop(message.graceful && running ? running.graceMs : 0);
  }
});
// The arbiter is gone: nobody supervises this process any more, so stop gracefully.
process.on('disconnect', () => void stop(running?.graceMs ?? 0));
