// Messages between the arbiter and a worker process (child_process IPC), and between a worker
// process and its threads (a MessagePort handed to each serve task). Types only.
import type { Config } from './config.js';
import type { FailureReport } from './errors.js';
import type { TcpBind } from './settings.js';
import type { MessagePort } from 'node:worker_threads';

/** What the arbiter hands a worker process: the config with every port made concrete. */
export interface WorkerProcessBoot {
  readonly type: 'boot';
  readonly config: Config;
}

export type ArbiterToProcess = WorkerProcessBoot | { readonly type: 'stop'; readonly graceful: boolean };

export type ProcessToArbiter =
  | { readonly type: 'ready'; readonly workers: number; readonly binding: string }
  | { readonly type: 'failed'; readonly report: FailureReport };

/** The piscina task each worker thread runs for its whole life. */
export interface ServeTask {
  readonly config: Config;
  readonly bindingPath: string;
  readonly worker: number;
  readonly control: MessagePort;
}

export type ServeOutcome =
  | { readonly outcome: 'stopped'; readonly requests: number }
  | { readonly outcome: 'failed'; readonly report: FailureReport };

export type ProcessToThread = { readonly type: 'drain'; readonly timeoutMs: number };

export type ThreadToProcess = { readonly type: 'listening'; readonly threadId: number };

export function formatAddress({ host, port }: TcpBind): string {
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}
