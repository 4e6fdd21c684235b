// One worker's uWS App: listens on the shared port(s), counts requests in flight, drains.
// Shutdown order obeys DESIGN.md: close the listen sockets, let in-flight requests finish,
// then app.close() (it also closes idle keep-alive connections), and only then may the thread
// end; a thread that ends with uWS sockets open aborts its whole process.
import { BootError } from '../server/errors.js';
import type { Logger } from '../server/logging.js';
import { formatAddress } from '../server/protocol.js';
import type { TcpBind } from '../server/settings.js';
import type { App } from './app.js';
import { Exchange, type ExchangeOwner } from './exchange.js';
import type { UwsApp, UwsListenSocket, UwsModule } from './uws.js';

export class HttpServer implements ExchangeOwner {
  readonly log: Logger;
  readonly #uws: UwsModule;
  readonly #app: UwsApp;
  #sockets: UwsListenSocket[] = [];
  #inflight = 0;
  #requests = 0;
  #draining = false;
  #closed = false;
  #forceTimer: NodeJS.Timeout | undefined;
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;

  constructor(uws: UwsModule, app: App, log: Logger) {
    this.log = log;
    this.#uws = uws;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    const fetch = app.fetch;
    this.#app = uws.App().any('/*', (res, req) => {
      try {
        const exchange = Exchange.accept(res, req, this);
        if (!exchange) return;
        this.#inflight += 1;
        this.#requests += 1;
        exchange.run(fetch);
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
    // Never close the App from inside one of its own callbacks: defer to the next turn.
    if (this.#draining && this.#inflight === 0) setImmediate(() => this.#inflight === 0 && this.close());
  }

  listen(binds: readonly TcpBind[]): void {
    for (const bind of binds) {
      let socket: UwsListenSocket | false = false;
      // uWS sets SO_REUSEPORT for every non-zero port: all workers share it.
      this.#app.listen(bind.host, bind.port, (token) => (socket = token));
      if (!socket) throw new BootError(`uWS could not listen at ${formatAddress(bind)}`);
      this.#sockets.push(socket);
    }
  }

  /** Stops accepting; closes once in-flight requests finish, or when the timeout cuts them. */
  drain(timeoutMs: number): void {
    if (this.#closed) return;
    this.#draining = true;
    for (const socket of this.#sockets.splice(0)) this.#uws.us_listen_socket_close(socket);
    if (this.#inflight === 0 || timeoutMs <= 0) {
      this.close();
      return;
    }
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
    for (const socket of this.#sockets.splice(0)) this.#uws.us_listen_socket_close(socket);
    this.#app.close();
    this.#resolveClosed();
  }
}
