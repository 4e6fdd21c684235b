// `serve bench APP`: load-test an app with autocannon across worker counts, or any running
// server with --url. For each worker count it starts narwhal, waits until it listens, checks
// one response, warms up, measures, and stops the server (also on Ctrl-C). Like the arbiter it
// never loads the app itself: the servers it measures are `serve` child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { EXIT, UsageError } from './errors.js';
import { htmlReport } from './bench-report.js';
import { bindingInUse } from './binding-report.js';

const SERVE = fileURLToPath(new URL('../../bin/serve.js', import.meta.url));

export interface BenchOptions {
  readonly app?: string;
  readonly url?: string;
  readonly workers: number[];
  readonly connections: number;
  readonly duration: number;
  readonly warmup: number;
  readonly pipelining: number;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly json?: string;
  /** An earlier --json report to compare with. */
  readonly compare?: string;
  /** A self-contained HTML report with charts. */
  readonly html?: string;
  readonly failOnErrors: boolean;
}

export interface BenchRun {
  readonly workers: number | null;
  readonly requestsPerSec: number;
  readonly requestsPerSecStdev: number;
  readonly latency: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  readonly throughputBytesPerSec: number;
  readonly requests: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  /** Share of one core the load generator used: near 1, the figures are a lower bound. */
  readonly clientCpu: number;
  /** Requests each worker served (from the server's log as it stops); empty with --url. */
  readonly perWorker: number[];
}

/** Checks and normalises what the user typed; every problem is a UsageError (exit 2). */
export function benchOptions(raw: Record<string, unknown>, cwd = process.cwd()): BenchOptions {
  const number = (name: string, min: number): number => {
    const value = Number(raw[name]);
    if (!Number.isFinite(value) || value < min) throw new UsageError(`--${name} must be a number of at least ${min}, not '${String(raw[name])}'`);
    return value;
  };
  const app = raw.app === undefined ? undefined : resolve(cwd, String(raw.app));
  const url = raw.url === undefined ? undefined : String(raw.url);
  if (!app === !url) throw new UsageError('serve bench takes either an APP to start or --url of a running server');
  if (app && !existsSync(app)) throw new UsageError(`App not found: ${app}`);
  if (url) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--url must be an http:// URL, not '${url}'`);
    }
    if (parsed.protocol !== 'http:') throw new UsageError(`--url must be an http:// URL, not '${url}'`);
  }
  const workers = String(raw.workers ?? '1').split(',').map((part) => Number(part.trim()));
  if (workers.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`--workers takes whole numbers like 1,2,4, not '${String(raw.workers)}'`);
  const headers: Record<string, string> = {};
  for (const header of ([] as unknown[]).concat(raw.header ?? []).map(String)) {
    const colon = header.indexOf(':');
    if (colon < 1) throw new UsageError(`--header must look like Name:value, not '${header}'`);
    headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
  }
  let body = raw.body === undefined ? undefined : String(raw.body);
  if (body?.startsWith('@')) {
    const file = resolve(cwd, body.slice(1));
    if (!existsSync(file)) throw new UsageError(`--body ${body}: no such file`);
    body = readFileSync(file, 'utf8');
  }
  const path = String(raw.path ?? '/');
  if (!path.startsWith('/')) throw new UsageError(`--path must start with /, not '${path}'`);
  return {
    app,
    url,
    workers,
    connections: number('connections', 1),
    duration: number('duration', 0.1),
    warmup: number('warmup', 0),
    pipelining: number('pipelining', 1),
    method: String(raw.method ?? 'GET').toUpperCase(),
    path,
    headers,
    body,
    json: raw.json === undefined ? undefined : resolve(cwd, String(raw.json)),
    compare: raw.compare === undefined ? undefined : existing(resolve(cwd, String(raw.compare)), '--compare'),
    html: raw.html === undefined ? undefined : resolve(cwd, String(raw.html)),
    failOnErrors: Boolean(raw['fail-on-errors']),
  };
}

/** The build the servers load, without its path. */
function bindingName(): string {
  try {
    return bindingInUse().replace(/ \(.*\)$/, '');
  } catch {
    return 'none loads';
  }
}

function existing(path: string, flag: string): string {
  if (!existsSync(path)) throw new UsageError(`${flag} ${path}: no such file`);
  return path;
}

/**
 * The change in req/s against an earlier report, per worker count. The noise band is the larger
 * of the two runs' stdev relative to their mean: a change inside it is not a change.
 */
export function comparison(previous: readonly BenchRun[], runs: readonly BenchRun[]): string {
  const rows = ['| workers | before req/s | now req/s | change | noise band | verdict |', '|--:|--:|--:|--:|--:|---|'];
  for (const run of runs) {
    const old = previous.find((p) => p.workers === run.workers);
    if (!old || old.requestsPerSec <= 0) continue;
    const change = run.requestsPerSec / old.requestsPerSec - 1;
    const band = Math.max(old.requestsPerSecStdev / old.requestsPerSec, run.requestsPerSecStdev / Math.max(1, run.requestsPerSec));
    // One-second runs have a single sample and so no spread to judge by.
    const sampled = old.requestsPerSecStdev > 0 && run.requestsPerSecStdev > 0;
    const verdict = !sampled ? 'too short to tell (run 2 s or more)' : Math.abs(change) <= band ? 'within noise' : change > 0 ? 'faster' : 'slower';
    const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
    rows.push(`| ${run.workers ?? '-'} | ${Math.round(old.requestsPerSec).toLocaleString('en')} | ${Math.round(run.requestsPerSec).toLocaleString('en')} | ${pct(change)} | ±${(band * 100).toFixed(1)}% | ${verdict} |`);
  }
  return rows.join('\n');
}

interface Server {
  readonly url: string;
  /** Stops the server; resolves to the requests each worker served. */
  stop(): Promise<number[]>;
}

/** Starts `serve APP --workers N` on a free loopback port; resolves once it listens. */
async function startServer(app: string, workers: number, children: Set<ChildProcess>): Promise<Server> {
  const child = spawn(process.execPath, [SERVE, app, '--workers', String(workers), '--bind', '127.0.0.1:0', '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let log = '';
  const url = await new Promise<string>((resolveUrl, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk;
      const match = /Listening at: (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (match) resolveUrl(match[1]!);
    });
    child.once('exit', (code) => reject(new UsageError(`serve ${app} exited (${code}) before it listened:\n${log.trim()}`)));
  });
  return {
    url,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
      children.delete(child);
      const served: number[] = [];
      for (const [, worker, count] of log.matchAll(/Worker (\d+) stopped after serving (\d+) requests/g)) served[Number(worker) - 1] = Number(count);
      return served;
    },
  };
}

async function checkOnce(url: string, options: BenchOptions): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { method: options.method, headers: options.headers, body: options.body });
  } catch (error) {
    throw new UsageError(`${url} did not answer: ${String((error as Error).cause ?? error)}`);
  }
  const text = await response.text();
  process.stderr.write(`Checked ${options.method} ${url}: ${response.status}, ${Buffer.byteLength(text)} bytes\n`);
}

async function load(url: string, options: BenchOptions, seconds: number, track: boolean): Promise<Omit<BenchRun, 'workers' | 'perWorker'>> {
  const before = process.cpuUsage();
  const started = performance.now();
  const instance = autocannon({
    url,
    method: options.method as 'GET',
    headers: options.headers,
    body: options.body,
    connections: options.connections,
    pipelining: options.pipelining,
    duration: seconds,
  });
  if (track) autocannon.track(instance as unknown as autocannon.Instance, { renderProgressBar: Boolean(process.stderr.isTTY), renderResultsTable: false, renderLatencyTable: false });
  const result = await instance;
  const used = process.cpuUsage(before);
  return {
    requestsPerSec: result.requests.average,
    requestsPerSecStdev: result.requests.stddev,
    latency: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    throughputBytesPerSec: result.throughput.average,
    requests: result.requests.total,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    clientCpu: (used.user + used.system) / ((performance.now() - started) * 1000),
  };
}

/**
 * The kernel spreads connections over the workers, not requests (SO_REUSEPORT hashes each
 * connection): with few connections some workers idle. Say so when it happened.
 */
function warnUneven(perWorker: readonly number[]): void {
  const total = perWorker.reduce((a, b) => a + (b ?? 0), 0);
  if (perWorker.length < 2 || total === 0) return;
  const even = total / perWorker.length;
  const idle = perWorker.map((n, i) => [i + 1, n ?? 0] as const).filter(([, n]) => n < even / 2);
  if (idle.length > 0) {
    process.stderr.write(`Warning: worker${idle.length > 1 ? 's' : ''} ${idle.map(([w]) => w).join(', ')} served less than half an even share; the kernel balances connections, not requests, so use more --connections.\n`);
  }
}

function spread(perWorker: readonly number[]): string {
  const total = perWorker.reduce((a, b) => a + (b ?? 0), 0);
  return total === 0 ? '-' : perWorker.map((n) => `${Math.round(((n ?? 0) / total) * 100)}%`).join(' / ');
}

function table(runs: readonly BenchRun[]): string {
  const rows = [
    '| workers | req/s | ± stdev | p50 ms | p90 ms | p99 ms | max ms | MB/s | errors | timeouts | non-2xx | client CPU | spread over workers |',
    '|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|',
  ];
  for (const run of runs) {
    const { latency: l } = run;
    rows.push(
      `| ${run.workers ?? '-'} | ${Math.round(run.requestsPerSec).toLocaleString('en')} | ${Math.round(run.requestsPerSecStdev).toLocaleString('en')} | ${l.p50} | ${l.p90} | ${l.p99} | ${l.max} | ` +
        `${(run.throughputBytesPerSec / 1048576).toFixed(1)} | ${run.errors} | ${run.timeouts} | ${run.non2xx} | ${Math.round(run.clientCpu * 100)}% | ${spread(run.perWorker)} |`,
    );
  }
  return rows.join('\n');
}

export async function bench(options: BenchOptions): Promise<number> {
  const children = new Set<ChildProcess>();
  // Ctrl-C stops the servers this command started before it exits.
  const interrupt = (): void => {
    for (const child of children) child.kill('SIGTERM');
    process.exit(130);
  };
  process.once('SIGINT', interrupt);
  const runs: BenchRun[] = [];
  try {
    for (const workers of options.url ? [null] : options.workers) {
      const server = options.url ? undefined : await startServer(options.app!, workers!, children);
      try {
        const url = options.url ?? `${server!.url}${options.path}`;
        await checkOnce(url, options);
        if (options.warmup > 0) await load(url, options, options.warmup, false);
        process.stderr.write(`Measuring ${workers === null ? url : `${workers} worker${workers > 1 ? 's' : ''}`} for ${options.duration} s\n`);
        const measured = await load(url, options, options.duration, true);
        if (measured.clientCpu > 0.9) process.stderr.write(`Warning: autocannon used ${Math.round(measured.clientCpu * 100)}% of a core; these figures are a lower bound for the server.\n`);
        const perWorker = (await server?.stop()) ?? [];
        runs.push({ ...measured, workers, perWorker });
        warnUneven(perWorker);
      } finally {
        await server?.stop();
      }
    }
  } finally {
    process.off('SIGINT', interrupt);
  }
  const summary = table(runs);
  process.stdout.write(`${summary}\n`);
  if (options.html) writeFileSync(options.html, htmlReport(runs, { ...options }, summary));
  if (options.compare) {
    const previous = (JSON.parse(readFileSync(options.compare, 'utf8')) as { runs?: BenchRun[] }).runs ?? [];
    process.stdout.write(`\nAgainst ${options.compare}:\n${comparison(previous, runs)}\n`);
  }
  if (options.json) {
    const report = { machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '' }, node: process.version, binding: bindingName(), settings: { ...options }, runs };
    writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  }
  const failed = runs.some((run) => run.errors + run.timeouts + run.non2xx > 0);
  return options.failOnErrors && failed ? 1 : EXIT.ok;
}
