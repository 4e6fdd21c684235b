// One worker's uWS App: listens on the shared port(s), counts requests in flight, drains.
// Shutdown order obeys DESIGN.md: close the listen sockets, let in-flight requests finish,
// then app.close() (it also closes idle keep-alive connections), and only then may the thread
// end; a thread that ends with uWS sockets open aborts its whole process.
import { BootError } from '../server/errors.js';
import type { Logger } from '../server/logging.js';
import { formatAddress } from '../server/protocol.js';
import { chmodSync, rmSync, statSync } from 'node:fs';
import { isUnix, unixPath, type Bind } from '../server/settings.js';
import type { App } from './app.js';
import { Exchange, refuse, type ExchangeOwner, type Limits } from './exchange.js';
import type { AccessLog } from './access-log.js';
import { ProxyTrust } from './forwarded.js';
import type { Heartbeat } from './heartbeat.js';
import type { UwsApp, UwsListenSocket, UwsModule } from './uws.js';

/** How long a draining worker waits after its last request before it closes idle connections. */
const QUIET_MS = 250;

export interface ServerOptions {
  /** Stamped around each request, so a hung request can be named from outside the thread. */
  readonly heartbeat?: Heartbeat | undefined;
  /** Peers whose X-Forwarded-* headers count (--forwarded-allow-ips). */
  readonly trust?: ProxyTrust;
  readonly limits?: Limits;
  readonly access?: AccessLog | undefined;
  readonly proxyProtocol?: boolean;
  /** Requests in flight at once before new ones get 503 (0: no limit). */
  readonly maxConcurrency?: number;
  /** Requests to serve before `onLimit` is called once (0: no limit). */
  readonly maxRequests?: number;
  readonly onLimit?: () => void;
}

export class HttpServer implements ExchangeOwner {
  readonly log: Logger;
  readonly trust: ProxyTrust;
  readonly limits: Limits;
  readonly access: AccessLog | undefined;
  readonly proxyProtocol: boolean;
  readonly #uws: UwsModule;
  readonly #app: UwsApp;
  #sockets: UwsListenSocket[] = [];
  #unixPaths: { path: string; inode: number }[] = [];
  #inflight = 0;
  #requests = 0;
  #draining = false;
  #closed = false;
  #forceTimer: NodeJS.Timeout | undefined;
  #quietTimer: NodeJS.Timeout | undefined;
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;

  constructor(uws: UwsModule, app: App, log: Logger, options: ServerOptions = {}) {
    this.log = log;
    this.trust = options.trust ?? new ProxyTrust([]);
    this.limits = options.limits ?? { body: 0, fields: 100, fieldSize: 8190 };
    this.access = options.access;
    this.proxyProtocol = options.proxyProtocol ?? false;
    const maxConcurrency = options.maxConcurrency ?? 0;
    this.#uws = uws;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    const fetch = app.fetch;
    const { heartbeat, maxRequests = 0, onLimit } = options;
    this.#app = uws.App().any('/*', (res, req) => {
      try {
        if (maxConcurrency > 0 && this.#inflight >= maxConcurrency) {
          refuse(res, 503, 'no');
          return;
        }
        const exchange = Exchange.accept(res, req, this);
        if (!exchange) return;
        this.#inflight += 1;
        this.#requests += 1;
        clearTimeout(this.#quietTimer);
        heartbeat?.enter(exchange.request.method, exchange.request.url);
        exchange.run(fetch);
        heartbeat?.leave();
        if (this.#requests === maxRequests) onLimit?.();
      } catch (error) {
        // Only a bug of ours gets here; a throw out of a uWS handler would abort the process.
        log.critical('Internal error in the request bridge', error);
      }
    });
  }

  get draining(): boolean {
    return this.#draining;
  }

  get requests(): number {
    return this.#requests;
  }

  settled(): void {
    this.#inflight -= 1;
    if (this.#draining && this.#inflight === 0) this.#closeWhenQuiet();
  }

  /**
   * Draining responses close their connections, so keep-alive clients move to other workers
   * with their next request. Once nothing has been in flight for QUIET_MS, what is left is idle:
   * close it. (Also never closes the App from inside one of its own callbacks.)
   */
  #closeWhenQuiet(): void {
    clearTimeout(this.#quietTimer);
    this.#quietTimer = setTimeout(() => this.#inflight === 0 && this.close(), QUIET_MS);
  }

  /** Listens on every bind; `worker` names this worker's unix socket, `umask` sets its mode. */
  listen(binds: readonly Bind[], worker = 1, umask = 0): void {
    for (const bind of binds) {
      let socket: UwsListenSocket | false = false;
      if (isUnix(bind)) {
        const path = unixPath(bind, worker);
        // A predecessor (reload, recycle) may still listen here: the new socket takes the path
        // over, the old one keeps what it accepted. (Stale files were removed by the arbiter.)
        rmSync(path, { force: true });
        this.#app.listen_unix((token) => (socket = token), path);
        if (!socket) throw new BootError(`uWS could not listen at unix:${path}`);
        // uWS creates the socket 0700, which nginx (www-data) cannot connect to.
        chmodSync(path, 0o777 & ~umask);
        this.#unixPaths.push({ path, inode: statSync(path).ino });
      } else {
        // uWS sets SO_REUSEPORT for every non-zero port: all workers share it.
        this.#app.listen(bind.host, bind.port, (token) => (socket = token));
        if (!socket) throw new BootError(`uWS could not listen at ${formatAddress(bind)}`);
      }
      this.#sockets.push(socket);
    }
  }

  /** Removes this worker's socket files, unless a successor has taken the path over. */
  #removeUnixPaths(): void {
    for (const { path, inode } of this.#unixPaths.splice(0)) {
      try {
        if (statSync(path).ino === inode) rmSync(path);
      } catch {
        // already gone
      }
    }
  }

  /** Stops accepting; closes once in-flight requests finish, or when the timeout cuts them. */
  drain(timeoutMs: number): void {
    if (this.#closed) return;
    this.#draining = true;
    for (const socket of this.#sockets.splice(0)) this.#uws.us_listen_socket_close(socket);
    this.#removeUnixPaths();
    if (timeoutMs <= 0) {
      this.close();
      return;
    }
    if (this.#inflight === 0) this.#closeWhenQuiet();
    clearTimeout(this.#forceTimer);
    this.#forceTimer = setTimeout(() => {
      this.log.warning(`Graceful timeout: cutting ${this.#inflight} request(s) still in flight`);
      this.close();
    }, timeoutMs);
  }

  /** Closes every socket at once; in-flight requests see their onAborted. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#draining = true;
    clearTimeout(this.#forceTimer);
    clearTimeout(this.#quietTimer);
    for (const socket of this.#sockets.splice(0)) this.#uws.us_listen_socket_close(socket);
    this.#removeUnixPaths();
    this.#app.close();
    this.access?.flush();
    this.#resolveClosed();
  }
}
