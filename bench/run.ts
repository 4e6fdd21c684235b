// `npm run bench`: narwhal against raw uWS (the ceiling), @hono/node-server (the same fetch app
// on node:http) and plain node:http, side by side and alternating, with autocannon.
// Servers run on core 0, autocannon on core 1 (taskset), so each side has one core.
// Correctness is checked before anything is timed; figures are medians over the rounds.
//   npm run bench [-- --duration 5 --rounds 3 --only hello,json]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const node = process.execPath;
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const DURATION = Number(args.get('duration') ?? 4);
const ROUNDS = Number(args.get('rounds') ?? 3);
const ONLY = args.get('only')?.split(',');
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

// Pin this process (the load generator) to core 1, once, by re-running under taskset.
if (hasTaskset && process.env.NARWHAL_BENCH_PINNED !== '1' && cpus().length >= 2) {
  const result = spawnSync('taskset', ['-c', '1', node, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, NARWHAL_BENCH_PINNED: '1' },
  });
  process.exit(result.status ?? 1);
}

interface Peer {
  readonly name: string;
  /** Command line, given the port and the number of workers. */
  command(port: number, workers: number): string[];
}

const PEERS: Peer[] = [
  { name: 'raw uWS', command: () => [node, 'bench/peers/raw-uws.mjs'] },
  { name: 'narwhal', command: (port, workers) => [node, 'bin/serve.js', 'bench/app.ts', '--workers', String(workers), '--bind', `127.0.0.1:${port}`, '--log-level', 'warning'] },
  { name: '@hono/node-server', command: () => [node, '--import', 'tsx', 'bench/peers/hono-node.ts'] },
  { name: 'node:http', command: () => [node, 'bench/peers/node-http.mjs'] },
];

interface Scenario {
  readonly name: string;
  readonly path: string;
  readonly method?: 'GET' | 'POST';
  readonly body?: Buffer;
  readonly pipelining: number;
  readonly connections: number;
  readonly check: (status: number, body: Buffer) => string | undefined;
}

const ECHO_BODY = Buffer.alloc(16 * 1024, 97);
const expectText = (text: string, status = 200) => (got: number, body: Buffer) =>
  got === status && body.toString() === text ? undefined : `expected ${status} '${text}', got ${got} '${body.toString().slice(0, 40)}'`;

const SCENARIOS: Scenario[] = ([
  { name: 'hello', path: '/', pipelining: 10, connections: 64, check: expectText('Hello, World!') },
  { name: 'json 1 KiB', path: '/json', pipelining: 10, connections: 64, check: (s, b) => (s === 200 && JSON.parse(b.toString()).items.length === 24 ? undefined : 'bad JSON') },
  { name: 'POST echo 16 KiB', path: '/echo', method: 'POST', body: ECHO_BODY, pipelining: 1, connections: 64, check: (s, b) => (s === 200 && b.equals(ECHO_BODY) ? undefined : `echo returned ${b.length} bytes`) },
  { name: 'stream 1 MiB', path: '/stream', pipelining: 1, connections: 16, check: (s, b) => (s === 200 && b.length === 1024 * 1024 ? undefined : `stream returned ${b.length} bytes`) },
  // A response that waits on a timer cannot be pipelined to uWS (DESIGN.md): -p 1.
  { name: 'async (1 ms timer)', path: '/async', pipelining: 1, connections: 64, check: expectText('waited') },
  { name: '404', path: '/missing', pipelining: 10, connections: 64, check: expectText('Not Found', 404) },
] satisfies Scenario[]).filter((scenario) => !ONLY || ONLY.some((name) => scenario.name.startsWith(name)));

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Running {
  readonly child: ChildProcess;
  readonly url: string;
  stop(): Promise<void>;
}

async function waitForHttp(url: string, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      await (await fetch(url)).arrayBuffer();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

async function start(peer: Peer, workers = 1, pin = true): Promise<Running> {
  const port = await freePort();
  const [command, ...rest] = peer.command(port, workers);
  // Unpinned servers get every core back: children inherit this process's pinning to core 1.
  const cores = pin ? '0' : `0-${cpus().length - 1}`;
  const argv = hasTaskset ? ['taskset', '-c', cores, command!, ...rest] : [command!, ...rest];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.resume();
  child.stderr!.on('data', (chunk: Buffer) => process.env.BENCH_VERBOSE && process.stderr.write(chunk));
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/`, 20_000);
  return {
    child,
    url,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function verify(url: string, scenario: Scenario): Promise<void> {
  const response = await fetch(`${url}${scenario.path}`, { method: scenario.method ?? 'GET', body: scenario.body });
  const problem = scenario.check(response.status, Buffer.from(await response.arrayBuffer()));
  if (problem) throw new Error(`${scenario.name} at ${url}: ${problem}`);
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  clientCpu: number;
}

async function load(url: string, scenario: Scenario, seconds: number): Promise<Sample> {
  const before = process.cpuUsage();
  const started = performance.now();
  const result = await autocannon({
    url: `${url}${scenario.path}`,
    method: scenario.method ?? 'GET',
    body: scenario.body,
    connections: scenario.connections,
    pipelining: scenario.pipelining,
    duration: seconds,
  });
  const used = process.cpuUsage(before);
  const wall = (performance.now() - started) * 1000;
  const expected = scenario.name === '404' ? result.non2xx - result.requests.total : result.non2xx;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + Math.max(0, expected),
    clientCpu: (used.user + used.system) / wall,
  };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function throughput(): Promise<Map<string, Sample[]>> {
  const samples = new Map<string, Sample[]>();
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round, so no server always runs first or last.
    const order = PEERS.map((_, i) => PEERS[(i + round) % PEERS.length]!);
    for (const peer of order) {
      const server = await start(peer);
      try {
        for (const scenario of SCENARIOS) {
          await verify(server.url, scenario);
          await load(server.url, scenario, 1); // warm-up
          const sample = await load(server.url, scenario, DURATION);
          const key = `${scenario.name}\u0000${peer.name}`;
          samples.set(key, [...(samples.get(key) ?? []), sample]);
          process.stderr.write(`round ${round + 1}/${ROUNDS} ${peer.name.padEnd(18)} ${scenario.name.padEnd(20)} ${Math.round(sample.rps)} req/s\n`);
        }
      } finally {
        await server.stop();
      }
    }
  }
  return samples;
}

function throughputTable(samples: Map<string, Sample[]>): string {
  const rows = ['| scenario | server | req/s | p50 ms | p99 ms | errors | vs raw uWS | vs node:http | client CPU |', '|---|---|--:|--:|--:|--:|--:|--:|--:|'];
  for (const scenario of SCENARIOS) {
    const of = (peer: string) => samples.get(`${scenario.name}\u0000${peer}`) ?? [];
    const rps = (peer: string) => median(of(peer).map((s) => s.rps));
    for (const peer of PEERS) {
      const runs = of(peer.name);
      const cpu = Math.max(...runs.map((s) => s.clientCpu));
      rows.push(
        `| ${scenario.name} | ${peer.name} | ${Math.round(rps(peer.name)).toLocaleString('en')} | ${median(runs.map((s) => s.p50))} | ${median(runs.map((s) => s.p99))} | ` +
          `${runs.reduce((n, s) => n + s.errors, 0)} | ${(rps(peer.name) / rps('raw uWS')).toFixed(2)}x | ${(rps(peer.name) / rps('node:http')).toFixed(2)}x | ${Math.round(cpu * 100)}%${cpu > 0.9 ? ' (client-bound)' : ''} |`,
      );
    }
  }
  return rows.join('\n');
}

/** Scaling on a CPU-bound route: narwhal 1 vs 2 workers, unpinned, with a light client (-c 4). */
async function scaling(): Promise<{ one: number; two: number }> {
  const scenario: Scenario = { name: 'cpu', path: '/cpu', pipelining: 1, connections: 4, check: () => undefined };
  const result: number[][] = [[], []];
  for (let round = 0; round < ROUNDS; round++) {
    for (const workers of [1, 2]) {
      const server = await start(PEERS[1]!, workers, false);
      try {
        await load(server.url, scenario, 1);
        result[workers - 1]!.push((await load(server.url, scenario, DURATION)).rps);
      } finally {
        await server.stop();
      }
    }
  }
  return { one: median(result[0]!), two: median(result[1]!) };
}

function treeRss(pid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process ended meanwhile
    }
  }
  let kib = 0;
  const visit = (p: number): void => {
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      return;
    }
    for (const child of children.get(p) ?? []) visit(child);
  };
  visit(pid);
  return kib / 1024;
}

/** Time from spawn to the first 200, and the RSS of the whole process tree once all workers serve. */
async function startup(peer: Peer, workers: number): Promise<{ ms: number; rssMb: number }> {
  const ms: number[] = [];
  const rss: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    const server = await start(peer, workers, false);
    ms.push(performance.now() - t0);
    await new Promise((resolve) => setTimeout(resolve, 500)); // let every worker finish booting
    rss.push(treeRss(server.child.pid!));
    await server.stop();
  }
  return { ms: median(ms), rssMb: median(rss) };
}

const CLUSTER: Peer = { name: 'node:cluster', command: () => [node, 'bench/peers/cluster.mjs'] };

async function main(): Promise<void> {
  const binding = spawnSync(node, ['dist/workers/binding.js'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim().replace(/ \(.*\)$/, '');
  const header = [
    `Node ${process.version}, binding ${binding}, ${cpus().length} x ${cpus()[0]?.model ?? 'CPU'}.`,
    `${hasTaskset ? 'Each server pinned to core 0, autocannon to core 1' : 'No taskset: servers and autocannon share the cores'}; ${ROUNDS} rounds of ${DURATION} s, medians; hello, json and 404 with 10 pipelined requests per connection, the rest without.`,
  ].join('\n');
  process.stderr.write(`${header}\n`);
  const samples = await throughput();
  const { one, two } = await scaling();
  const sizes = [1, 4];
  const boot: string[] = ['| workers | narwhal first 200 | narwhal RSS | node:cluster first 200 | node:cluster RSS |', '|--:|--:|--:|--:|--:|'];
  const bootFigures: Record<string, { ms: number; rssMb: number }> = {};
  for (const workers of sizes) {
    const ours = await startup(PEERS[1]!, workers);
    process.env.WORKERS = String(workers);
    const theirs = await startup(CLUSTER, workers);
    bootFigures[workers] = ours;
    bootFigures[`cluster${workers}`] = theirs;
    boot.push(`| ${workers} | ${Math.round(ours.ms)} ms | ${Math.round(ours.rssMb)} MB | ${Math.round(theirs.ms)} ms | ${Math.round(theirs.rssMb)} MB |`);
  }
  const rps = (scenario: string, peer: string) => median((samples.get(`${scenario}\u0000${peer}`) ?? []).map((s) => s.rps));
  const p99 = (scenario: string, peer: string) => median((samples.get(`${scenario}\u0000${peer}`) ?? []).map((s) => s.p99));
  const check = (ok: boolean, text: string) => `- [${ok ? 'x' : ' '}] ${text}`;
  const targets = [
    check(rps('hello', 'narwhal') >= 0.85 * rps('hello', 'raw uWS'), `hello >= 0.85x raw uWS: ${(rps('hello', 'narwhal') / rps('hello', 'raw uWS')).toFixed(2)}x`),
    check(rps('hello', 'narwhal') >= 2 * rps('hello', 'node:http'), `hello >= 2x node:http: ${(rps('hello', 'narwhal') / rps('hello', 'node:http')).toFixed(2)}x`),
    check(p99('hello', 'narwhal') <= 1.5 * Math.max(1, p99('hello', 'raw uWS')), `hello p99 <= 1.5x raw uWS: ${p99('hello', 'narwhal')} ms vs ${p99('hello', 'raw uWS')} ms`),
    check(two >= 1.8 * one, `2 workers >= 1.8x 1 worker on the CPU-bound route: ${(two / one).toFixed(2)}x (${Math.round(one)} -> ${Math.round(two)} req/s)`),
    check(bootFigures[4]!.ms < 300, `4 workers answering in under 0.3 s: ${Math.round(bootFigures[4]!.ms)} ms`),
    check(bootFigures[4]!.rssMb < bootFigures.cluster4!.rssMb, `RSS with 4 workers below node:cluster with 4: ${Math.round(bootFigures[4]!.rssMb)} vs ${Math.round(bootFigures.cluster4!.rssMb)} MB`),
  ];
  if (SCENARIOS.length < 6) targets.length = 0;
  const report = [
    header,
    '',
    throughputTable(samples),
    '',
    `Scaling on the CPU-bound route (/cpu, fib(27); autocannon -c 4, unpinned): 1 worker ${Math.round(one)} req/s, 2 workers ${Math.round(two)} req/s, ${(two / one).toFixed(2)}x.`,
    '',
    'Startup (spawn to first 200 OK) and memory (RSS of the whole process tree), medians:',
    '',
    boot.join('\n'),
    '',
    ...(targets.length ? ['Targets:', '', ...targets] : []),
  ].join('\n');
  process.stdout.write(`\n${report}\n`);
  if (!ONLY) {
    const readme = new URL('./README.md', import.meta.url);
    const text = readFileSync(readme, 'utf8');
    writeFileSync(readme, text.replace(/<!-- results:start -->[\s\S]*<!-- results:end -->/, `<!-- results:start -->\n${report}\n<!-- results:end -->`));
  }
}

await main();
