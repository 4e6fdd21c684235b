// The access log (--access-log), in gunicorn's format language or as JSON lines. The format is
// compiled once; lines are queued and written once per event-loop turn (one write for many
// requests, off the path that answers them).
import { LogFile } from '../server/logfile.js';

/** What the access log reads from a finished exchange. */
export interface AccessRecord {
  readonly method: string;
  readonly url: string;
  /** The status sent, or 499 when the client left before any response. */
  readonly status: number;
  readonly bytes: number;
  readonly durationMs: number;
  readonly remote: string;
  requestHeader(name: string): string | undefined;
  responseHeader(name: string): string | undefined;
}

type Atom = (record: AccessRecord, url: URL) => string;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** [10/Oct/2000:13:55:36 +0000], as gunicorn and Apache write it. */
function clf(date = new Date()): string {
  return `[${pad(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000]`;
}

const dash = (value: string | undefined): string => (value === undefined || value === '' ? '-' : value);

const ATOMS: Record<string, Atom> = {
  h: (r) => dash(r.remote),
  l: () => '-',
  u: () => '-',
  t: () => clf(),
  r: (r, url) => `${r.method} ${url.pathname}${url.search} HTTP/1.1`,
  m: (r) => r.method,
  U: (_r, url) => url.pathname,
  q: (_r, url) => url.search.slice(1),
  H: () => 'HTTP/1.1',
  s: (r) => String(r.status),
  B: (r) => String(r.bytes),
  b: (r) => (r.bytes > 0 ? String(r.bytes) : '-'),
  f: (r) => dash(r.requestHeader('referer')),
  a: (r) => dash(r.requestHeader('user-agent')),
  T: (r) => String(Math.floor(r.durationMs / 1000)),
  M: (r) => String(Math.round(r.durationMs)),
  D: (r) => String(Math.round(r.durationMs * 1000)),
  L: (r) => (r.durationMs / 1000).toFixed(6),
  p: () => `<${process.pid}>`,
};

/** Compiles `%(h)s %(t)s "%(r)s" %({user-agent}i)s` into one function; unknown atoms throw. */
export function compileFormat(format: string): (record: AccessRecord) => string {
  const parts: (string | Atom)[] = [];
  let last = 0;
  for (const match of format.matchAll(/%\(([^)]+)\)s/g)) {
    parts.push(format.slice(last, match.index));
    const name = match[1]!;
    const header = /^\{([^}]+)\}([io])$/.exec(name);
    if (header) {
      const key = header[1]!.toLowerCase();
      parts.push(header[2] === 'i' ? (r) => dash(r.requestHeader(key)) : (r) => dash(r.responseHeader(key)));
    } else if (ATOMS[name]) {
      parts.push(ATOMS[name]);
    } else {
      throw new Error(`unknown access log atom %(${name})s`);
    }
    last = match.index! + match[0].length;
  }
  parts.push(format.slice(last));
  return (record) => {
    const url = new URL(record.url);
    let line = '';
    for (const part of parts) line += typeof part === 'string' ? part : part(record, url);
    return line;
  };
}

function jsonLine(record: AccessRecord): string {
  const url = new URL(record.url);
  return JSON.stringify({
    time: new Date().toISOString(),
    remote: record.remote,
    method: record.method,
    path: url.pathname,
    query: url.search.slice(1),
    protocol: 'HTTP/1.1',
    status: record.status,
    bytes: record.bytes,
    referer: record.requestHeader('referer') ?? null,
    user_agent: record.requestHeader('user-agent') ?? null,
    duration_ms: Math.round(record.durationMs * 1000) / 1000,
  });
}

export class AccessLog {
  readonly #file: LogFile;
  readonly #format: (record: AccessRecord) => string;
  #queue = '';
  #scheduled = false;

  constructor(path: string, format: string, json: boolean) {
    this.#file = new LogFile(path, 1);
    this.#format = json ? jsonLine : compileFormat(format);
  }

  log(record: AccessRecord): void {
    this.#queue += `${this.#format(record)}\n`;
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.#scheduled = false;
    if (!this.#queue) return;
    const lines = this.#queue;
    this.#queue = '';
    this.#file.write(lines);
  }

  reopen(): void {
    this.flush();
    this.#file.reopen();
  }
}
