// The one settings table. Each setting is declared once here; the CLI (yargs options), the
// environment (NARWHAL_*), validation, --print-config and the README's reference all derive
// from it (gunicorn's config.py is the model).
import { availableParallelism } from 'node:os';
import { isIP } from 'node:net';
import { UsageError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface TcpBind {
  readonly host: string;
  readonly port: number;
}

/** `unix:PATH`: worker N listens on PATH.N (uWS gives one path's connections to one thread only). */
export interface UnixBind {
  readonly unix: string;
}

export type Bind = TcpBind | UnixBind;

export const isUnix = (bind: Bind): bind is UnixBind => 'unix' in bind;

/** The socket path of one worker for a unix bind. */
export const unixPath = (bind: UnixBind, worker: number): string => `${bind.unix}.${worker}`;

export const LOG_LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

interface SettingSpec<T> {
  /** yargs flag, as the user types it without the dashes. */
  readonly flag: string;
  readonly alias?: string;
  readonly env: string;
  /** One value per occurrence; the flag may be repeated. */
  readonly repeatable?: boolean;
  /** An on/off flag: `--flag` alone turns it on. */
  readonly boolean?: boolean;
  readonly help: string;
  /** How the default reads in the docs. */
  readonly defaultText: string;
  readonly default: (env: Env) => T;
  /** Turns the text a user typed into a value; throws a message naming `source`. */
  readonly parse: (text: string, source: string) => T;
}

function positiveInt(text: string, source: string): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${source} must be a whole number of at least 1, not '${text}'`);
  }
  return n;
}

function wholeNumber(text: string, source: string): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n)) {
    throw new UsageError(`${source} must be a whole number (0 or more), not '${text}'`);
  }
  return n;
}

function seconds(text: string, source: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`${source} must be a number of seconds (0 or more), not '${text}'`);
  }
  return n;
}

/** `HOST:PORT`, `[V6]:PORT`, `HOST`, `:PORT` or `unix:PATH`, as gunicorn's --bind. */
export function parseBind(text: string, source: string): Bind {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (!path.startsWith('/')) throw new UsageError(`${source} '${text}': give the socket's absolute path, as unix:/run/narwhal/app.sock`);
    return { unix: path };
  }
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*))(?::(\d+))?$/.exec(text.trim());
  const host = match ? (match[1] ?? match[2] ?? '') : '';
  const port = match?.[3] === undefined ? 8000 : Number(match[3]);
  const hostOk = host === '' || isIP(host) !== 0 || /^[a-z0-9.-]+$/i.test(host);
  if (!match || !hostOk || port > 65535 || (match[1] !== undefined && isIP(host) !== 6)) {
    throw new UsageError(`${source} must look like HOST:PORT, [IPV6]:PORT or :PORT, not '${text}'`);
  }
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** An IP, a CIDR block or `*`, as gunicorn's and uvicorn's --forwarded-allow-ips. */
function trustedProxy(text: string, source: string): string {
  if (text === '*') return text;
  const [address = '', bits, extra] = text.split('/');
  const family = isIP(address);
  const max = family === 6 ? 128 : 32;
  const bitsOk = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= max);
  if (family === 0 || !bitsOk || extra !== undefined) {
    throw new UsageError(`${source} takes IP addresses, CIDR blocks (10.0.0.0/8) or *, not '${text}'`);
  }
  return text;
}

function logLevel(text: string, source: string): LogLevel {
  const level = text.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`${source} must be one of ${LOG_LEVELS.join(', ')}, not '${text}'`);
  }
  return level as LogLevel;
}

function defaultWorkers(env: Env): number {
  const fromEnv = env.WEB_CONCURRENCY;
  return fromEnv === undefined || fromEnv === '' ? availableParallelism() : positiveInt(fromEnv, 'WEB_CONCURRENCY');
}

function defaultBind(env: Env): Bind[] {
  const port = env.PORT;
  return port === undefined || port === '' ? [{ host: '127.0.0.1', port: 8000 }] : [parseBind(`0.0.0.0:${port}`, 'PORT')];
}

export const SETTINGS = {
  bind: {
    flag: 'bind',
    alias: 'b',
    env: 'NARWHAL_BIND',
    repeatable: true,
    help: 'Address to listen on: HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH (worker N listens on PATH.N). Repeat to listen on several.',
    defaultText: '127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set',
    default: defaultBind,
    parse: (text, source) => text.split(',').map((part) => parseBind(part, source)),
  } satisfies SettingSpec<Bind[]>,
  workers: {
    flag: 'workers',
    alias: 'w',
    env: 'NARWHAL_WORKERS',
    help: 'Worker threads serving requests, each with its own event loop and copy of the app.',
    defaultText: '$WEB_CONCURRENCY, else the number of CPUs',
    default: defaultWorkers,
    parse: positiveInt,
  } satisfies SettingSpec<number>,
  gracefulTimeout: {
    flag: 'graceful-timeout',
    env: 'NARWHAL_GRACEFUL_TIMEOUT',
    help: 'Seconds in-flight requests get to finish on a graceful stop before they are cut.',
    defaultText: '30',
    default: () => 30,
    parse: seconds,
  } satisfies SettingSpec<number>,
  processes: {
    flag: 'processes',
    env: 'NARWHAL_PROCESSES',
    help: 'Worker processes the workers are spread over; a process that dies takes only its own workers with it.',
    defaultText: '1',
    default: () => 1,
    parse: positiveInt,
  } satisfies SettingSpec<number>,
  timeout: {
    flag: 'timeout',
    alias: 't',
    env: 'NARWHAL_TIMEOUT',
    help: 'Seconds a worker may go without a heartbeat (busy in one request) before its process is replaced; 0 turns it off.',
    defaultText: '30',
    default: () => 30,
    parse: seconds,
  } satisfies SettingSpec<number>,
  maxRequests: {
    flag: 'max-requests',
    env: 'NARWHAL_MAX_REQUESTS',
    help: 'Requests a worker serves before it is recycled gracefully (a fresh thread takes over); 0 turns it off.',
    defaultText: '0',
    default: () => 0,
    parse: wholeNumber,
  } satisfies SettingSpec<number>,
  maxRequestsJitter: {
    flag: 'max-requests-jitter',
    env: 'NARWHAL_MAX_REQUESTS_JITTER',
    help: 'Each worker adds a random 0..J to --max-requests, so workers do not all recycle at once.',
    defaultText: '0',
    default: () => 0,
    parse: wholeNumber,
  } satisfies SettingSpec<number>,
  maxWorkerMemory: {
    flag: 'max-worker-memory',
    env: 'NARWHAL_MAX_WORKER_MEMORY',
    help: 'MB of JavaScript heap above which a worker is recycled gracefully; 0 turns it off.',
    defaultText: '0',
    default: () => 0,
    parse: wholeNumber,
  } satisfies SettingSpec<number>,
  pid: {
    flag: 'pid',
    env: 'NARWHAL_PID',
    help: "File to write the arbiter's pid to (removed on exit).",
    defaultText: 'none',
    default: () => '',
    parse: (text) => text,
  } satisfies SettingSpec<string>,
  limitRequestBody: {
    flag: 'limit-request-body',
    env: 'NARWHAL_LIMIT_REQUEST_BODY',
    help: 'Largest request body in bytes, counted as it streams in (chunked too); larger gets 413. 0 means no limit.',
    defaultText: '0',
    default: () => 0,
    parse: wholeNumber,
  } satisfies SettingSpec<number>,
  limitRequestFields: {
    flag: 'limit-request-fields',
    env: 'NARWHAL_LIMIT_REQUEST_FIELDS',
    help: 'Most header fields a request may have; more gets 431. (The v20.3x uWS core never passes more than 48.)',
    defaultText: '100',
    default: () => 100,
    parse: positiveInt,
  } satisfies SettingSpec<number>,
  limitRequestFieldSize: {
    flag: 'limit-request-field-size',
    env: 'NARWHAL_LIMIT_REQUEST_FIELD_SIZE',
    help: 'Largest header field (name and value) in bytes; larger gets 431.',
    defaultText: '8190',
    default: () => 8190,
    parse: positiveInt,
  } satisfies SettingSpec<number>,
  limitConcurrency: {
    flag: 'limit-concurrency',
    env: 'NARWHAL_LIMIT_CONCURRENCY',
    help: 'Most requests one worker handles at once; more get 503 at once instead of queueing. 0 means no limit.',
    defaultText: '0',
    default: () => 0,
    parse: wholeNumber,
  } satisfies SettingSpec<number>,
  umask: {
    flag: 'umask',
    env: 'NARWHAL_UMASK',
    help: 'Bits taken away from the unix sockets\' mode 0777 (octal): 007 lets only the owner and group (www-data) connect.',
    defaultText: '0 (anyone may connect)',
    default: () => 0,
    parse: (text, source) => {
      if (!/^0?[0-7]{1,3}$/.test(text.trim())) throw new UsageError(`${source} must be an octal mode such as 007, not '${text}'`);
      return parseInt(text, 8);
    },
  } satisfies SettingSpec<number>,
  forwardedAllowIps: {
    flag: 'forwarded-allow-ips',
    env: 'NARWHAL_FORWARDED_ALLOW_IPS',
    help: 'Proxies trusted to set X-Forwarded-For, -Proto and -Host: IPs, CIDRs, or * for any. From other peers these headers change nothing.',
    defaultText: '127.0.0.1,::1',
    default: () => ['127.0.0.1', '::1'],
    parse: (text, source) => text.split(',').map((part) => trustedProxy(part.trim(), source)),
  } satisfies SettingSpec<string[]>,
  errorLog: {
    flag: 'error-log',
    env: 'NARWHAL_ERROR_LOG',
    help: 'Where the error log goes: a file (reopened on USR1), or - for stderr.',
    defaultText: '- (stderr)',
    default: () => '-',
    parse: (text) => text,
  } satisfies SettingSpec<string>,
  accessLog: {
    flag: 'access-log',
    env: 'NARWHAL_ACCESS_LOG',
    help: 'Where the access log goes: a file (reopened on USR1), or - for stdout. Off unless given.',
    defaultText: 'off',
    default: () => '',
    parse: (text) => text,
  } satisfies SettingSpec<string>,
  accessLogFormat: {
    flag: 'access-log-format',
    env: 'NARWHAL_ACCESS_LOG_FORMAT',
    help: "Access log line, with gunicorn's atoms: %(h)s %(t)s %(r)s %(s)s %(b)s %(M)s %({user-agent}i)s ... (see the README).",
    defaultText: "gunicorn's: %(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"",
    default: () => '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
    parse: (text, source) => {
      for (const [, atom] of text.matchAll(/%\(([^)]+)\)s/g)) {
        if (!/^([hlutrmUqHsBbfaTMDLp]|\{[^}]+\}[io])$/.test(atom!)) throw new UsageError(`${source}: unknown atom %(${atom})s; see the README for the atoms`);
      }
      return text;
    },
  } satisfies SettingSpec<string>,
  logFormat: {
    flag: 'log-format',
    env: 'NARWHAL_LOG_FORMAT',
    help: 'text, or json: one JSON object per line in the error and access logs.',
    defaultText: 'text',
    default: () => 'text' as 'text' | 'json',
    parse: (text, source) => {
      if (text !== 'text' && text !== 'json') throw new UsageError(`${source} must be text or json, not '${text}'`);
      return text;
    },
  } satisfies SettingSpec<'text' | 'json'>,
  proxyProtocol: {
    flag: 'proxy-protocol',
    env: 'NARWHAL_PROXY_PROTOCOL',
    boolean: true,
    help: 'Take the client address from a PROXY protocol v2 header sent by a load balancer in --forwarded-allow-ips. Off, the header changes nothing.',
    defaultText: 'off',
    default: () => false,
    parse: (text, source) => {
      const value = text.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(value)) return true;
      if (['false', '0', 'no', 'off'].includes(value)) return false;
      throw new UsageError(`${source} must be true or false, not '${text}'`);
    },
  } satisfies SettingSpec<boolean>,
  logLevel: {
    flag: 'log-level',
    env: 'NARWHAL_LOG_LEVEL',
    help: `Least severe level written to the error log: ${LOG_LEVELS.join(', ')}.`,
    defaultText: 'info',
    default: () => 'info' as LogLevel,
    parse: logLevel,
  } satisfies SettingSpec<LogLevel>,
} as const;

export type SettingName = keyof typeof SETTINGS;
export type Settings = { readonly [K in SettingName]: ReturnType<(typeof SETTINGS)[K]['default']> };

export function settingNames(): SettingName[] {
  return Object.keys(SETTINGS) as SettingName[];
}

/** The README's settings reference, derived from the table (a test keeps the README in step). */
export function settingsReference(): string {
  const rows = settingNames().map((name) => {
    const spec: SettingSpec<unknown> = SETTINGS[name];
    const flag = [`--${spec.flag}`, spec.alias ? `-${spec.alias}` : ''].filter(Boolean).join(', ');
    return `| \`${flag}\` | \`${spec.env}\` | ${spec.defaultText} | ${spec.help} |`;
  });
  return ['| flag | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
