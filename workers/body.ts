// The request body, fed by uWS onData. uWS rules obeyed here:
// - onData must be attached synchronously in the handler, or data is lost.
// - the ArrayBuffer it passes is neutered when the callback returns: copy it.
// - an exception thrown from a uWS callback aborts the process: never throw out of onData.
// The body is buffered only while nobody reads it, and only up to HIGH_WATER bytes before the
// socket is paused; a reader that streams gets backpressure through pause()/resume().
import type { UwsResponse } from './uws.js';

const HIGH_WATER = 1024 * 1024;
const EMPTY = new Uint8Array(0);

type Mode = 'buffer' | 'stream' | 'discard';

export class ClientGoneError extends Error {
  constructor() {
    super('The client closed the connection before the request body was complete');
    this.name = 'AbortError';
  }
}

export class PayloadTooLargeError extends Error {
  constructor(limit: number) {
    super(`The request body is larger than ${limit} bytes (--limit-request-body)`);
    this.name = 'PayloadTooLargeError';
  }
}

export class RequestBody {
  readonly #res: UwsResponse;
  #mode: Mode = 'buffer';
  #chunks: Uint8Array[] = [];
  #size = 0;
  #complete = false;
  #failure: Error | undefined;
  #paused = false;
  #used = false;
  #stream: ReadableStream<Uint8Array> | undefined;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #waiters: { resolve: (bytes: Uint8Array) => void; reject: (error: Error) => void }[] = [];

  readonly #limit: number;
  readonly #onTooLarge: (() => void) | undefined;
  #received = 0;

  /** `limit` bytes (0: none): beyond it every reader fails and `onTooLarge` is called once. */
  constructor(res: UwsResponse, limit = 0, onTooLarge?: () => void) {
    this.#res = res;
    this.#limit = limit;
    this.#onTooLarge = onTooLarge;
    res.onData((chunk, isLast) => {
      try {
        this.#onData(chunk, isLast);
      } catch (error) {
        this.fail(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  get used(): boolean {
    return this.#used;
  }

  #onData(chunk: ArrayBuffer, isLast: boolean): void {
    if (this.#limit > 0 && this.#mode !== 'discard' && (this.#received += chunk.byteLength) > this.#limit) {
      this.fail(new PayloadTooLargeError(this.#limit));
      this.discard();
      this.#onTooLarge?.();
      return;
    }
    if (this.#mode === 'discard') return;
    if (chunk.byteLength > 0) {
      const copy = new Uint8Array(chunk.slice(0));
      if (this.#controller) this.#controller.enqueue(copy);
      else this.#chunks.push(copy);
      this.#size += copy.byteLength;
    }
    if (isLast) {
      this.#complete = true;
      this.#controller?.close();
      this.#settle();
    } else if (this.#controller ? (this.#controller.desiredSize ?? 1) <= 0 : this.#waiters.length === 0 && this.#size >= HIGH_WATER) {
      this.#pause();
    }
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#res.pause();
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#res.resume();
  }

  #settle(): void {
    if (this.#waiters.length === 0) return;
    const bytes = this.#chunks.length === 1 ? this.#chunks[0]! : concat(this.#chunks, this.#size);
    this.#chunks = [];
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(bytes);
  }

  #claim(): void {
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
  }

  /** The whole body. Resolves within microtasks when it has already arrived (pipelining needs that). */
  bytes(): Promise<Uint8Array> {
    this.#claim();
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#complete) {
      const bytes = this.#chunks.length === 0 ? EMPTY : this.#chunks.length === 1 ? this.#chunks[0]! : concat(this.#chunks, this.#size);
      this.#chunks = [];
      return Promise.resolve(bytes);
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#resume();
    });
  }

  /** The body as a stream; what arrived before is delivered first. */
  stream(): ReadableStream<Uint8Array> {
    if (this.#stream) return this.#stream;
    this.#mode = 'stream';
    this.#stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          for (const chunk of this.#chunks) controller.enqueue(chunk);
          this.#chunks = [];
          if (this.#failure) controller.error(this.#failure);
          else if (this.#complete) controller.close();
          else this.#controller = controller;
        },
        pull: () => {
          this.#used = true;
          this.#resume();
        },
        cancel: () => this.discard(),
      },
      { highWaterMark: HIGH_WATER, size: (chunk) => chunk.byteLength },
    );
    return this.#stream;
  }

  /** Nobody will read the rest: drop it, and let uWS read on so the connection stays usable. */
  discard(): void {
    this.#mode = 'discard';
    this.#chunks = [];
    this.#controller = undefined;
    this.#resume();
  }

  /** The client went away, or onData misbehaved: every reader gets the error. */
  fail(error: Error): void {
    if (this.#complete || this.#failure) return;
    this.#failure = error;
    this.#paused = false;
    try {
      this.#controller?.error(error);
    } catch {
      // The stream was already closed or errored by its reader.
    }
    this.#controller = undefined;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
