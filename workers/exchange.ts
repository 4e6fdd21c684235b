// One request/response on a uWS connection: the bridge between uWS and the app's fetch().
// The uWS rules it obeys (DESIGN.md, measured on the v20.3x fork):
// - req dies when the handler returns: everything is copied synchronously in the constructor,
//   getCaseSensitiveMethod() before anything that could lower-case the method in place.
// - onAborted is attached before any await; after it fires, res is never touched again.
// - writes after an await go inside res.cork().
// - writeHeader does not de-duplicate: the app's content-length / transfer-encoding / date /
//   connection headers are dropped, uWS writes its own.
// - HEAD, 204 and 304 end with endWithoutBody(); the fork's endWithoutBody(length) aborts the
//   process, so a HEAD's content-length is written as a plain header.
// - an exception escaping a uWS callback aborts the process: every callback catches.
import { STATUS_CODES } from 'node:http';
import type { Logger } from '../server/logging.js';
import type { ConnInfo, FetchHandler } from './app.js';
import { ClientGoneError, PayloadTooLargeError, RequestBody } from './body.js';
import type { AccessLog } from './access-log.js';
import type { ProxyTrust } from './forwarded.js';
import { IncomingRequest } from './request.js';
import { byteLength, fastParts, forEachHeader, toUint8Array, type FastBody, type HeadersInit } from './response.js';
import type { UwsRequest, UwsResponse } from './uws.js';

/** Request limits (--limit-request-*), 0 meaning none. */
export interface Limits {
  readonly body: number;
  readonly fields: number;
  readonly fieldSize: number;
}

/** What an exchange needs from the server that owns the connection. */
export interface ExchangeOwner {
  readonly log: Logger;
  readonly limits: Limits;
  /** Which peers may set X-Forwarded-* (and, with --proxy-protocol, send PROXY headers). */
  readonly trust: ProxyTrust;
  /** --proxy-protocol: believe the client address of a PROXY v2 header from a trusted peer. */
  readonly proxyProtocol: boolean;
  /** Where finished exchanges are logged (--access-log), if anywhere. */
  readonly access: AccessLog | undefined;
  /** True while draining: responses say `connection: close`. */
  readonly draining: boolean;
  /** Called exactly once per exchange, when its response is sent or the client is gone. */
  settled(): void;
}

const encoder = new TextEncoder();
const DROPPED_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date']);
const statusLines = new Map<number, string>();
// The Host header becomes part of request.url: refuse what would make it another URL.
const VALID_HOST = /^(?:[a-z0-9._~!$&'()*+,;=%-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/** What the head of a response is written from: a light response's parts, or a real Response. */
interface Head {
  readonly status: number;
  readonly statusText: string;
  readonly headers: HeadersInit | undefined;
  /** Sent as content-type when the headers name none. */
  readonly type?: string | undefined;
}

export function statusLine(status: number, statusText = ''): string {
  if (statusText) return `${status} ${statusText}`;
  let line = statusLines.get(status);
  if (line === undefined) {
    line = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    statusLines.set(status, line);
  }
  return line;
}

function hasNoBody(status: number): boolean {
  return status === 204 || status === 304 || status < 200;
}

/** An address uWS gives as text in an ArrayBuffer, normalised. */
function addressText(buffer: ArrayBuffer): string {
  return normalizeAddress(Buffer.from(buffer).toString('latin1'));
}

/** uWS spells IPv6 out in full, and IPv4 peers of a dual-stack listener arrive mapped. */
export function normalizeAddress(text: string): string {
  if (!text.includes(':')) return text;
  const mapped = /^(?:0{1,4}:){5}ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(text);
  if (mapped) {
    const high = parseInt(mapped[1]!, 16);
    const low = parseInt(mapped[2]!, 16);
    return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return text;
  }
}

/** What a trusted proxy says about the request, read while `req` is alive. */
function fromProxy(res: UwsResponse, req: UwsRequest, trust: ProxyTrust): { scheme?: string; host?: string; client?: ConnInfo['remoteAddr'] } | undefined {
  const peer = addressText(res.getRemoteAddressAsText());
  // A unix-socket peer (no address) is the local proxy: trusted, as in gunicorn.
  if (peer !== '' && !trust.trusts(peer)) return undefined;
  const first = (name: string): string | undefined => req.getHeader(name).split(',')[0]?.trim() || undefined;
  const proto = first('x-forwarded-proto')?.toLowerCase();
  const forwardedFor = req.getHeader('x-forwarded-for');
  const client = forwardedFor ? trust.client(forwardedFor) : undefined;
  return {
    scheme: proto === 'https' || proto === 'http' ? proto : undefined,
    host: first('x-forwarded-host'),
    client: client ? { hostname: client, port: 0, transport: 'tcp' } : undefined,
  };
}

/** A response header by (lower-case) name, from an init of any shape. */
function findHeader(headers: HeadersInit | undefined, name: string): string | undefined {
  let found: string | undefined;
  forEachHeader(headers, (key, value) => {
    if (key === name) found = found === undefined ? value : `${found}, ${value}`;
  });
  return found;
}

/**
 * Answers a request narwhal refuses itself, before or instead of the app.
 * `close`: 'now' when the connection cannot be trusted any more (bad framing); 'after' tells
 * the client to close once it has sent its body, which uWS reads and drops meanwhile. A proxy
 * such as nginx still sending a large body would report a 502 if the connection closed under
 * it, instead of passing the 413 on (seen in CI).
 */
export function refuse(res: UwsResponse, status: number, close: 'now' | 'after' | 'no'): void {
  const line = statusLine(status);
  res.writeStatus(line).writeHeader('content-type', 'text/plain').writeHeader('server', 'narwhal');
  if (status === 503) res.writeHeader('retry-after', '1');
  if (close === 'after') res.writeHeader('connection', 'close');
  res.end(line.slice(4), close === 'now');
}

type Phase = 'open' | 'streaming' | 'done';

export class Exchange {
  readonly #res: UwsResponse;
  readonly #owner: ExchangeOwner;
  readonly #head: boolean;
  readonly #body: RequestBody | null;
  readonly request: IncomingRequest;
  readonly info: ConnInfo;
  #phase: Phase = 'open';
  #aborted = false;
  #remote: ConnInfo['remoteAddr'] | undefined;
  /** Wakes a stream waiting for onWritable, or stops it when the client is gone. */
  #wake: (() => void) | undefined;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  // For the access log: what was sent, and when the request came in.
  #status = 0;
  #bytes = 0;
  #sentHeaders: HeadersInit | undefined;
  readonly #started: number = 0;

  /** Reads everything it needs from req; returns undefined after answering a bad request itself. */
  static accept(res: UwsResponse, req: UwsRequest, owner: ExchangeOwner): Exchange | undefined {
    const method = req.getCaseSensitiveMethod();
    const path = req.getUrl();
    const query = req.getQuery();
    const host = req.getHeader('host');
    const headerPairs: string[] = [];
    let contentLength: string | undefined;
    let conflicting = false;
    let forwarded = false;
    let oversized = false;
    const { limits } = owner;
    req.forEach((name, value) => {
      headerPairs.push(name, value);
      if (name.length + value.length + 2 > limits.fieldSize) oversized = true;
      if (name.charCodeAt(0) === 120 /* x */ && name.startsWith('x-forwarded-')) forwarded = true;
      if (name !== 'content-length') return;
      // uWS passes two different Content-Length values through: a request-smuggling vector.
      if (contentLength !== undefined && contentLength !== value) conflicting = true;
      contentLength = value;
    });
    if (oversized || headerPairs.length / 2 > limits.fields) {
      refuse(res, 431, 'now');
      return undefined;
    }
    if (limits.body > 0 && contentLength !== undefined && Number(contentLength) > limits.body) {
      refuse(res, 413, 'after');
      return undefined;
    }
    const proxy = forwarded ? fromProxy(res, req, owner.trust) : undefined;
    const authority = proxy?.host ?? host;
    if (conflicting || !VALID_HOST.test(authority) || path.charCodeAt(0) !== 47 /* / */) {
      refuse(res, 400, 'now');
      return undefined;
    }
    const origin = `${proxy?.scheme ?? 'http'}://${authority}`;
    const url = query ? `${origin}${path}?${query}` : `${origin}${path}`;
    const hasBody = req.getHeader('transfer-encoding') !== '' || (contentLength !== undefined && contentLength !== '0');
    return new Exchange(res, owner, method, url, headerPairs, hasBody, proxy?.client);
  }

  private constructor(res: UwsResponse, owner: ExchangeOwner, method: string, url: string, headerPairs: string[], hasBody: boolean, remote?: ConnInfo['remoteAddr']) {
    this.#remote = remote;
    this.#res = res;
    this.#owner = owner;
    this.#head = method === 'HEAD';
    res.onAborted(() => this.#onAborted());
    this.#body = hasBody ? new RequestBody(res, owner.limits.body, () => this.#tooLarge()) : null;
    this.request = new IncomingRequest({ method, url, headerPairs, body: this.#body });
    this.info = new RequestInfo(this);
    if (owner.access) {
      this.#started = performance.now();
      this.#remoteAddr(); // the log line needs it after the response, when uWS no longer knows it
    }
  }

  /** Notes what is being sent, for the access log. */
  #sending(head: Head, bytes: number): void {
    this.#status = head.status;
    this.#sentHeaders = head.headers;
    this.#bytes = bytes;
  }

  /** How log lines name this request; built only when something is logged. */
  get #target(): string {
    return `${this.request.method} ${this.request.url}`;
  }

  /** The peer's address, read from uWS on first use (while the response is still open). */
  remoteAddr(): ConnInfo['remoteAddr'] {
    return this.#remoteAddr();
  }

  /** Calls the app and answers with what it returns. Never throws. */
  run(fetch: FetchHandler): void {
    let result: unknown;
    try {
      result = fetch(this.request as unknown as Request, this.info);
    } catch (error) {
      this.#fail(error);
      return;
    }
    if (result instanceof Response) {
      this.#respond(result);
    } else if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
      (result as PromiseLike<unknown>).then(
        (response) => this.#respond(response),
        (error) => this.#fail(error),
      );
    } else {
      this.#fail(new TypeError(`The fetch handler returned ${describe(result)}, not a Response`));
    }
  }

  #remoteAddr(): ConnInfo['remoteAddr'] {
    if (!this.#remote) {
      const usable = this.#phase !== 'done' && !this.#aborted;
      let hostname = usable ? addressText(this.#res.getRemoteAddressAsText()) : '';
      const port = usable && this.#res.getRemotePort ? this.#res.getRemotePort() : 0;
      // uWS parses a PROXY v2 header whenever one comes, so it counts only when asked for,
      // and only from a peer trusted to be the load balancer.
      if (usable && this.#owner.proxyProtocol && (hostname === '' || this.#owner.trust.trusts(hostname))) {
        const proxied = addressText(this.#res.getProxiedRemoteAddressAsText());
        if (proxied) return (this.#remote = { hostname: proxied, port: 0, transport: 'tcp' });
      }
      // uWS reports no address for a unix-socket peer.
      this.#remote = { hostname, port, transport: usable && hostname === '' ? 'unix' : 'tcp' };
    }
    return this.#remote;
  }

  #onAborted(): void {
    this.#aborted = true;
    this.request.abort();
    this.#body?.fail(new ClientGoneError());
    this.#reader?.cancel(new ClientGoneError()).catch(() => undefined);
    this.#wake?.();
    this.#settle();
  }

  /** The body passed --limit-request-body while streaming in: 413 if nothing was sent yet. */
  #tooLarge(): void {
    this.#owner.log.warning(`${this.#target}: request body over ${this.#owner.limits.body} bytes (--limit-request-body)`);
    if (this.#phase !== 'open' || this.#aborted) return;
    this.#status = 413;
    this.#res.cork(() => refuse(this.#res, 413, 'after'));
    this.#settle();
  }

  #settle(): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    this.#owner.settled();
    const access = this.#owner.access;
    if (!access) return;
    const request = this.request;
    access.log({
      method: request.method,
      url: request.url,
      status: this.#status || 499,
      bytes: this.#bytes,
      durationMs: performance.now() - this.#started,
      remote: this.#remote?.hostname ?? '',
      requestHeader: (name) => IncomingRequest.header(request, name),
      responseHeader: (name) => findHeader(this.#sentHeaders, name),
    });
  }

  #respond(response: unknown): void {
    if (!(response instanceof Response)) {
      this.#fail(new TypeError(`The fetch handler resolved to ${describe(response)}, not a Response`));
      return;
    }
    if (this.#phase === 'done') {
      // Answered already (413 while the body streamed in): the app's response goes nowhere.
      response.body?.cancel().catch(() => undefined);
      return;
    }
    const parts = fastParts(response);
    if (parts) {
      // A light response: status, headers init and body go to uWS as the app gave them.
      if (!this.#aborted) this.#sendWhole(parts, parts.body);
      return;
    }
    const body = response.body;
    if (this.#aborted) {
      body?.cancel().catch(() => undefined);
      return;
    }
    const head: Head = { status: response.status, statusText: response.statusText, headers: response.headers };
    if (body === null || hasNoBody(response.status)) {
      body?.cancel().catch(() => undefined);
      this.#sendWhole(head, null);
      return;
    }
    this.#pump(head, body).catch((error) => this.#fail(error));
  }

  /**
   * A body that is complete within microtasks (string, bytes, Blob: what `new Response(x)` holds)
   * goes out whole with a content-length, which also keeps pipelining working. Anything slower
   * streams, and its first chunk is sent as soon as it exists (server-sent events need that).
   */
  async #pump(head: Head, body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.getReader();
    this.#reader = reader;
    const first = await reader.read();
    if (this.#aborted) return;
    if (first.done) return this.#sendWhole(head, null);
    let next = reader.read();
    const second = await Promise.race([next, nextTurn()]);
    if (this.#aborted) return;
    if (second?.done) return this.#sendWhole(head, toBytes(first.value));
    if (this.#head) {
      await reader.cancel();
      return this.#sendWhole(head, undefined);
    }
    this.#phase = 'streaming';
    this.#sending(head, 0);
    this.#res.cork(() => this.#writeHead(head));
    await this.#write(toBytes(first.value));
    for (;;) {
      if (this.#aborted) return;
      const chunk = await next;
      if (this.#aborted) return;
      if (chunk.done) break;
      await this.#write(toBytes(chunk.value));
      next = reader.read();
    }
    this.#body?.discard();
    this.#res.cork(() => this.#res.end(undefined, this.#owner.draining));
    this.#settle();
  }

  /** Writes the status line and headers; returns the content-length the app declared, if any. */
  #writeHead(head: Head): string | undefined {
    const res = this.#res;
    res.writeStatus(statusLine(head.status, head.statusText));
    let server = false;
    let type = false;
    let declared: string | undefined;
    forEachHeader(head.headers, (name, value) => {
      if (DROPPED_HEADERS.has(name)) {
        if (name === 'content-length') declared = value;
        return;
      }
      if (name === 'server') server = true;
      else if (name === 'content-type') type = true;
      res.writeHeader(name, value);
    });
    if (!type && head.type) res.writeHeader('content-type', head.type);
    if (!server) res.writeHeader('server', 'narwhal');
    return declared;
  }

  /**
   * Ends the response with all of its body at once. `body` undefined: a HEAD whose body is a
   * long stream, so its length is known only if the app declared it.
   */
  #sendWhole(head: Head, body: FastBody | undefined): void {
    this.#body?.discard();
    this.#sending(head, this.#head || hasNoBody(head.status) || body === undefined ? 0 : byteLength(body));
    const res = this.#res;
    res.cork(() => {
      const declared = this.#writeHead(head);
      if (hasNoBody(head.status)) {
        this.#endWithoutBody();
      } else if (this.#head) {
        const length = body !== undefined ? String(byteLength(body)) : declared !== undefined && /^\d+$/.test(declared) ? declared : undefined;
        if (length !== undefined) res.writeHeader('content-length', length);
        this.#endWithoutBody();
      } else {
        this.#tryEnd(body ?? null);
        return;
      }
      this.#settle();
    });
  }

  /**
   * While draining, the client must not reuse the connection, but the fork's
   * endWithoutBody(length, close) aborts the process: say it in a header, and the drain's
   * quiet period closes what is left.
   */
  #endWithoutBody(): void {
    if (this.#owner.draining) this.#res.writeHeader('connection', 'close');
    this.#res.endWithoutBody();
  }

  /** tryEnd with onWritable retries: the exchange settles only when every byte is handed off. */
  #tryEnd(body: FastBody): void {
    const res = this.#res;
    const total = byteLength(body);
    if (total === 0 || this.#owner.draining) {
      // end(body, true) makes uWS close the connection once the response is out, so a
      // keep-alive client takes its next request to a worker that is not draining.
      res.end(body ?? undefined, this.#owner.draining);
      this.#settle();
      return;
    }
    const start = res.getWriteOffset();
    if (res.tryEnd(body!, total)[1]) {
      this.#settle();
      return;
    }
    this.#phase = 'streaming';
    const bytes = toUint8Array(body);
    res.onWritable((offset) => {
      try {
        const [ok, done] = res.tryEnd(bytes.subarray(offset - start), total);
        if (done) this.#settle();
        return ok;
      } catch (error) {
        this.#owner.log.error(`Error writing the response to ${this.#target}`, error);
        return true;
      }
    });
  }

  /** Writes one chunk of a streamed body; waits for onWritable when uWS had to buffer it. */
  async #write(chunk: Uint8Array): Promise<void> {
    if (chunk.byteLength === 0) return;
    this.#bytes += chunk.byteLength;
    let flushed = true;
    this.#res.cork(() => {
      flushed = this.#res.write(chunk);
    });
    if (flushed || this.#aborted) return;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#res.onWritable(() => {
        this.#wake = undefined;
        // The v20.3x fork drains the microtask queue after handler, onData and onAborted calls,
        // but not after onWritable (measured: a stream stalled for good once its client was
        // slow). setImmediate makes Node run this continuation on its own loop.
        setImmediate(resolve);
        return true;
      });
    });
  }

  #fail(error: unknown): void {
    if (this.#phase === 'done' && error instanceof PayloadTooLargeError) return; // answered with 413
    if (this.#aborted) {
      this.#owner.log.debug(`${this.#target}: the client left before the response was complete (${String(error)})`);
      return;
    }
    this.#owner.log.error(`Error handling request ${this.#target}`, error);
    if (this.#phase === 'done') return;
    if (this.#phase === 'streaming') {
      // Part of the response is out: closing is the only way to tell the client it is cut short.
      this.#res.close();
      return;
    }
    this.#body?.discard();
    this.#status = 500;
    this.#bytes = 21;
    this.#res.cork(() => {
      this.#res.writeStatus(statusLine(500)).writeHeader('content-type', 'text/plain; charset=utf-8').writeHeader('server', 'narwhal');
      this.#res.end('Internal Server Error', this.#owner.draining);
    });
    this.#settle();
  }
}

/** Resolves after pending I/O callbacks, i.e. after every microtask queued so far. */
function nextTurn(): Promise<undefined> {
  return new Promise((resolve) => setImmediate(resolve, undefined));
}

/** `info`, the second argument of fetch; a class so the getter lives on one prototype. */
class RequestInfo implements ConnInfo {
  readonly #exchange: Exchange;

  constructor(exchange: Exchange) {
    this.#exchange = exchange;
  }

  get remoteAddr(): ConnInfo['remoteAddr'] {
    return this.#exchange.remoteAddr();
  }
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === 'string') return encoder.encode(chunk);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`A response body stream yielded ${describe(chunk)}; streams must yield Uint8Array chunks`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return value.constructor?.name ? `a ${value.constructor.name}` : 'an object';
}
