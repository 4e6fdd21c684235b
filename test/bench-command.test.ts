// `serve bench`: the load-test command users run against their apps.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, freePort, runServe, serve } from './helpers.js';

interface Report {
  machine: { cpus: number; model: string };
  node: string;
  binding: string;
  runs: { workers: number | null; perWorker: number[]; requests: number; requestsPerSec: number; latency: Record<'p50' | 'p90' | 'p99' | 'max', number>; errors: number; non2xx: number; timeouts: number; clientCpu: number }[];
}

describe('serve bench', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'narwhal-bench-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('measures an app across worker counts, prints a table and writes the JSON and HTML reports', async () => {
    const json = join(dir, 'r.json');
    const html = join(dir, 'r.html');
    const { code, stdout, stderr } = await runServe(['bench', 'apps/hello.ts', '--workers', '1,2', '--duration', '1', '--warmup', '0', '--connections', '8', '--json', json, '--html', html], { timeoutMs: 60_000 });
    assert.ok(readFileSync(html, 'utf8').startsWith('<!doctype html>'));
    assert.doesNotMatch(readFileSync(html, 'utf8'), /<(script|link|img)[^>]+(src|href)=/, 'self-contained: nothing to fetch');
    assert.equal(code, 0, stderr);
    assert.match(stdout, /\| workers \| req\/s \|[\s\S]*\n\| 1 \| [\d,]+ \|[\s\S]*\n\| 2 \| [\d,]+ \|/);
    assert.match(stderr, /Checked GET http:\/\/127\.0\.0\.1:\d+\/: 200, 13 bytes/);
    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    assert.equal(report.node, process.version);
    assert.match(report.binding, /(uWebSockets\.js|uwebsockets\.js|uws-js-unofficial) \d+\.\d+/);
    assert.ok(report.machine.cpus >= 1);
    assert.deepEqual(report.runs.map((run) => run.workers), [1, 2]);
    assert.equal(report.runs[1]!.perWorker.length, 2, 'requests per worker, read from the server as it stops');
    assert.ok(report.runs[1]!.perWorker.reduce((a, b) => a + b, 0) >= report.runs[1]!.requests);
    for (const run of report.runs) {
      assert.ok(run.requestsPerSec > 0);
      for (const key of ['p50', 'p90', 'p99', 'max'] as const) assert.equal(typeof run.latency[key], 'number');
      assert.equal(run.errors, 0);
      assert.equal(run.non2xx, 0);
    }
  });

  it('draws the HTML report\'s charts in a real headless Chromium', async function () {
    if (spawnSync('chromium', ['--version']).error) {
      console.log('      SKIPPED: chromium is not installed (apt-get install chromium; .ci/run does it)');
      this.skip();
    }
    const html = join(dir, 'chart.html');
    const { code } = await runServe(['bench', 'apps/hello.ts', '--workers', '1,2', '--duration', '0.5', '--warmup', '0', '--connections', '4', '--html', html], { timeoutMs: 60_000 });
    assert.equal(code, 0);
    const profile = mkdtempSync(join(tmpdir(), 'narwhal-chromium-'));
    try {
      const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--virtual-time-budget=3000', '--dump-dom', pathToFileURL(html).href];
      const dom = spawnSync('chromium', flags, { encoding: 'utf8', timeout: 60_000 }).stdout;
      // The page's own script counts the bars with a real layout size: 2 worker counts, 3 percentiles each.
      assert.match(dom, /<body data-rendered="2,6">/);
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  });

  it('compares with an earlier report (--compare), calling changes inside the noise band noise', async () => {
    const { comparison } = await import('../server/bench.js');
    const run = (workers: number, rps: number, stdev: number) => ({ workers, perWorker: [], requestsPerSec: rps, requestsPerSecStdev: stdev, latency: { p50: 1, p90: 1, p99: 1, max: 1 }, throughputBytesPerSec: 0, requests: 0, errors: 0, timeouts: 0, non2xx: 0, clientCpu: 0 });
    const text = comparison([run(1, 1000, 50), run(2, 2000, 20)], [run(1, 1030, 40), run(2, 1500, 30)]);
    assert.match(text, /\| 1 \| 1,000 \| 1,030 \| \+3\.0% \| ±5\.0% \| within noise \|/);
    assert.match(text, /\| 2 \| 2,000 \| 1,500 \| -25\.0% \| ±2\.0% \| slower \|/);
  });

  it('measures any running server with --url, and --fail-on-errors turns non-2xx into exit 1', async () => {
    const server = await serve(fixture('echo.ts'), ['--workers', '1']);
    try {
      const ok = await runServe(['bench', '--url', `${server.url}/sync`, '--duration', '1', '--warmup', '0', '--connections', '4'], { timeoutMs: 30_000 });
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /\n\| - \| [\d,]+ \|/);
      const missing = await runServe(['bench', '--url', `${server.url}/nope`, '--duration', '0.5', '--warmup', '0', '--connections', '2', '--fail-on-errors'], { timeoutMs: 30_000 });
      assert.equal(missing.code, 1);
    } finally {
      await server.stop();
    }
  });

  it('exits 2 with a clear message on bad input, starting nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['bench', 'apps/nope.ts'], /App not found: .*apps\/nope\.ts/],
      [['bench', '--url', `http://127.0.0.1:${await freePort()}/`, '--duration', '1'], /did not answer/],
      [['bench', 'apps/hello.ts', '--header', 'no-colon'], /--header must look like Name:value, not 'no-colon'/],
      [['bench', 'apps/hello.ts', '--duration', '0'], /--duration must be a number of at least 0\.1, not '0'/],
      [['bench'], /either an APP to start or --url/],
      [['bench', 'apps/hello.ts', '--wrong'], /Unknown argument: wrong/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await runServe(args);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
    }
  });
});
