// Messages between the arbiter and a worker process (child_process IPC), and between a worker
// process and its threads (a MessagePort handed to each serve task). Types only.
import type { Config } from './config.js';
import type { FailureReport } from './errors.js';
import type { Bind } from './settings.js';
import type { MessagePort } from 'node:worker_threads';

/** What the arbiter hands a worker process: the config with every port made concrete. */
export interface WorkerProcessBoot {
  readonly type: 'boot';
  /** `workers` here is this process's share of the workers. */
  readonly config: Config;
  /** Number of this process's first worker, so workers are numbered across processes. */
  readonly firstWorker: number;
}

export type ArbiterToProcess = WorkerProcessBoot | { readonly type: 'stop'; readonly graceful: boolean } | { readonly type: 'reopen' };

export type ProcessToArbiter =
  | { readonly type: 'ready'; readonly workers: number; readonly binding: string }
  | { readonly type: 'failed'; readonly report: FailureReport }
  /** A worker missed its heartbeats for --timeout seconds while running `request`. */
  | { readonly type: 'hung'; readonly worker: number; readonly request: string; readonly silentMs: number }
  /** Stopping, every healthy worker has drained; only hung ones remain: kill the process. */
  | { readonly type: 'drained' };

/** The piscina task each worker thread runs for its whole life. */
export interface ServeTask {
  readonly config: Config;
  readonly bindingPath: string;
  readonly worker: number;
  readonly control: MessagePort;
  /** The thread's heartbeat slot (workers/heartbeat.ts), shared with the worker process. */
  readonly heartbeat: SharedArrayBuffer;
}

export type ServeOutcome =
  | { readonly outcome: 'stopped'; readonly requests: number }
  | { readonly outcome: 'failed'; readonly report: FailureReport };

/** `exit`: end the thread once drained (recycling), so its memory goes with it. */
export type ProcessToThread = { readonly type: 'drain'; readonly timeoutMs: number; readonly exit?: boolean } | { readonly type: 'reopen' };

export type ThreadToProcess =
  | { readonly type: 'listening'; readonly threadId: number }
  /** The worker wants to be recycled: start its successor, then tell it to drain. */
  | { readonly type: 'recycle'; readonly reason: string };

export function formatAddress(bind: Bind): string {
  if ('unix' in bind) return `unix:${bind.unix}.N`;
  const { host, port } = bind;
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}
