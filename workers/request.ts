// The Request the app receives: `instanceof Request` holds and every property works, but
// method, url, headers and the body are served straight from what was copied out of uWS.
// A real undici Request is built only when the app touches something rare (cache, mode,
// clone, ...), the technique of @hono/node-server and srvx (research/runtime-anchors.md §3).
import type { RequestBody } from './body.js';
import { forwardToNative } from './inherit.js';

const EMPTY = new Uint8Array(0);
const decoder = new TextDecoder();

export interface RequestParts {
  readonly method: string;
  readonly url: string;
  /** Header names (lower-case) and values, flat: [name, value, name, value, ...]. */
  readonly headerPairs: readonly string[];
  readonly body: RequestBody | null;
}

export class IncomingRequest {
  readonly #parts: RequestParts;
  #headers: Headers | undefined;
  #abort: AbortController | undefined;
  #aborted = false;
  #real: Request | undefined;

  constructor(parts: RequestParts) {
    this.#parts = parts;
  }

  get method(): string {
    return this.#parts.method;
  }

  get url(): string {
    return this.#parts.url;
  }

  get headers(): Headers {
    if (this.#real) return this.#real.headers;
    if (!this.#headers) {
      const pairs = this.#parts.headerPairs;
      const headers = new Headers();
      for (let i = 0; i < pairs.length; i += 2) headers.append(pairs[i]!, pairs[i + 1]!);
      this.#headers = headers;
    }
    return this.#headers;
  }

  get signal(): AbortSignal {
    if (!this.#abort) {
      this.#abort = new AbortController();
      if (this.#aborted) this.#abort.abort(clientGone());
    }
    return this.#abort.signal;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#real) return this.#real.body;
    return this.#parts.body ? this.#parts.body.stream() : null;
  }

  get bodyUsed(): boolean {
    if (this.#real) return this.#real.bodyUsed;
    return this.#parts.body?.used ?? false;
  }

  /** A request header by lower-case name, read from what uWS gave, without building Headers. */
  static header(request: IncomingRequest, name: string): string | undefined {
    const pairs = request.#parts.headerPairs;
    let found: string | undefined;
    for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name) found = found === undefined ? pairs[i + 1] : `${found}, ${pairs[i + 1]}`;
    return found;
  }

  /** The client went away: abort `request.signal`. */
  abort(): void {
    this.#aborted = true;
    this.#abort?.abort(clientGone());
  }

  async bytes(): Promise<Uint8Array> {
    if (this.#real) return new Uint8Array(await this.#real.arrayBuffer());
    return this.#parts.body ? this.#parts.body.bytes() : EMPTY;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.bytes();
    return bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
  }

  async text(): Promise<string> {
    return decoder.decode(await this.bytes());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async blob(): Promise<Blob> {
    return new Blob([await this.bytes()], { type: this.headers.get('content-type') ?? '' });
  }

  async formData(): Promise<FormData> {
    const contentType = this.headers.get('content-type') ?? '';
    return new Response(await this.bytes(), { headers: { 'content-type': contentType } }).formData();
  }

  clone(): Request {
    return this.#materialize().clone();
  }

  /** The real Request behind the rare properties; built once, then the only owner of the body. */
  #materialize(): Request {
    if (!this.#real) {
      const { method, url, body } = this.#parts;
      const init: RequestInit & { duplex?: 'half' } = { method, headers: this.headers, signal: this.signal };
      if (body) {
        init.body = body.stream();
        init.duplex = 'half';
      }
      this.#real = new Request(url, init);
    }
    return this.#real;
  }

  static {
    // Everything of Request.prototype we do not answer ourselves forwards to the real Request.
    forwardToNative(IncomingRequest, Request, (self) => self.#materialize(), 'Request');
  }
}

function clientGone(): Error {
  const error = new Error('The client closed the connection');
  error.name = 'AbortError';
  return error;
}
