// A light Response for worker threads, after @hono/node-server's (research/runtime-anchors.md §3).
// `new Response(string | bytes | null, init)` and `Response.json()` keep their status, headers
// init and body as they were given, and the response writer sends those straight to uWS: no
// undici object, no body stream. Anything else the app touches (body, clone(), text(), ...)
// builds the real undici Response once and forwards to it, so every Response feature works.
// Installed as globalThis.Response in our worker threads only; `instanceof Response` holds for
// light and real responses alike.

import { forwardToNative } from './inherit.js';

export type HeadersInit = ConstructorParameters<typeof Headers>[0];
type BodyInit = ConstructorParameters<typeof Response>[0];
type ResponseInit = ConstructorParameters<typeof Response>[1];

const GlobalResponse = globalThis.Response;
const PARTS = Symbol('narwhal.responseParts');
const REAL = Symbol('narwhal.realResponse');
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const TEXT = 'text/plain;charset=UTF-8';
/** Lets Response.json() pass its content-type through the constructor without copying headers. */
const DEFAULT_TYPE = Symbol('narwhal.defaultType');
const encoder = new TextEncoder();

export type FastBody = string | Uint8Array | null;

/** What the writer sends for a light response. `headers` is the init as given, or Headers once touched. */
export interface FastParts {
  readonly status: number;
  readonly statusText: string;
  readonly body: FastBody;
  headers: HeadersInit | undefined;
  /** The content-type to send when the headers name none (text for strings, JSON for json()). */
  readonly type: string | undefined;
}

function fastBody(body: unknown): FastBody | undefined {
  if (body === null || body === undefined) return null;
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  return undefined;
}

export class FastResponse {
  [PARTS]: FastParts | undefined;
  [REAL]: Response | undefined;

  constructor(body?: BodyInit | null, init?: ResponseInit) {
    const status = init?.status ?? 200;
    const fast = fastBody(body);
    const plain = Number.isInteger(status) && status >= 200 && status <= 599 && !(NULL_BODY_STATUS.has(status) && fast);
    if (fast !== undefined && plain && (init?.statusText === undefined || typeof init.statusText === 'string') && validHeaders(init?.headers)) {
      const type = (init as { [DEFAULT_TYPE]?: string } | undefined)?.[DEFAULT_TYPE] ?? (typeof fast === 'string' ? TEXT : undefined);
      this[PARTS] = { status, statusText: init?.statusText ?? '', body: fast, headers: init?.headers, type };
    } else {
      // Streams, Blobs, FormData, odd statuses: the real thing (which also throws the right errors).
      this[REAL] = new GlobalResponse(body, init);
    }
  }

  get status(): number {
    return this[PARTS]?.status ?? this[REAL]!.status;
  }

  get ok(): boolean {
    const status = this.status;
    return status >= 200 && status <= 299;
  }

  get statusText(): string {
    return this[PARTS]?.statusText ?? this[REAL]!.statusText;
  }

  get headers(): Headers {
    const parts = this[PARTS];
    if (!parts) return this[REAL]!.headers;
    if (!(parts.headers instanceof Headers)) {
      const headers = new Headers(parts.headers);
      if (parts.type && !headers.has('content-type')) headers.set('content-type', parts.type);
      parts.headers = headers;
    }
    return parts.headers;
  }

  static json(data: unknown, init?: ResponseInit): Response {
    const text = JSON.stringify(data);
    if (text === undefined) return GlobalResponse.json(data, init);
    return new FastResponse(text, { ...init, [DEFAULT_TYPE]: 'application/json' } as ResponseInit) as unknown as Response;
  }

  static {
    forwardToNative(FastResponse, GlobalResponse, realOf, 'Response');
    Object.setPrototypeOf(FastResponse, GlobalResponse); // Response.redirect, Response.error
    // Real responses (from fetch(), or built before the swap) are Responses too.
    Object.defineProperty(FastResponse, Symbol.hasInstance, { value: (value: unknown) => value instanceof GlobalResponse });
  }
}

/** Builds the real Response once; from then on it alone holds the body. */
function realOf(response: FastResponse): Response {
  const parts = response[PARTS];
  if (parts) {
    response[REAL] = new GlobalResponse(parts.body, { status: parts.status, statusText: parts.statusText, headers: response.headers });
    response[PARTS] = undefined;
  }
  return response[REAL]!;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\r\n\0]/;

/** Headers would refuse these (and so must we: a CR or LF in a value splits the response). */
function validHeaders(headers: HeadersInit | undefined): boolean {
  if (headers === undefined || headers instanceof Headers) return true;
  const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
  for (const pair of pairs as unknown[][]) {
    if (pair.length !== 2 || !TOKEN.test(String(pair[0])) || BAD_VALUE.test(String(pair[1]))) return false;
  }
  return true;
}

/** The parts of a light response the writer may send directly, or undefined. */
export function fastParts(response: object): FastParts | undefined {
  return (response as Partial<FastResponse>)[PARTS];
}

/** Calls `write` for each header of an init in any of its three shapes, names lower-cased. */
export function forEachHeader(headers: HeadersInit | undefined, write: (name: string, value: string) => void): void {
  if (headers === undefined) return;
  if (headers instanceof Headers) {
    for (const [name, value] of headers) write(name, value);
  } else if (Array.isArray(headers)) {
    for (const [name, value] of headers as [string, string][]) write(name.toLowerCase(), String(value));
  } else {
    for (const name of Object.keys(headers)) write(name.toLowerCase(), String((headers as Record<string, string>)[name]));
  }
}

export function byteLength(body: FastBody): number {
  if (body === null) return 0;
  return typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
}

export function toUint8Array(body: FastBody): Uint8Array {
  if (body === null) return new Uint8Array(0);
  return typeof body === 'string' ? encoder.encode(body) : body;
}

/** Makes `new Response(...)` in this thread build light responses. */
export function installFastResponse(): void {
  globalThis.Response = FastResponse as unknown as typeof Response;
}
