// The arbiter's lifecycle under continuous load: crashes, hangs, reloads, scaling, recycling.
// Every path that drains a worker must lose no request (with net.ipv4.tcp_migrate_req=1).
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shares } from '../server/arbiter.js';
import { fixture, runServe, serve, type Served } from './helpers.js';
import { ensureMigrateReq, startLoad, type Load } from './load.js';

describe('worker shares across processes', () => {
  it('spreads workers evenly and numbers them across processes', () => {
    assert.deepEqual(shares(4, 1), [[4, 1]]);
    assert.deepEqual(shares(5, 2), [[3, 1], [2, 4]]);
    assert.deepEqual(shares(2, 3), [[1, 1], [1, 2]]);
  });
});

describe('lifecycle under load', function () {
  let dir: string;
  let app: string;
  before(function () {
    const why = ensureMigrateReq();
    if (why) {
      console.log(`      SKIPPED: ${why}`);
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'narwhal-lifecycle-'));
    app = join(dir, 'app.ts');
  });
  beforeEach(() => copyFileSync(fixture('lifecycle.ts'), app));
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  /** Both kinds of client at once: a new connection per request, and keep-alive. */
  function load(server: Served): Load[] {
    return [startLoad(server.port, { mode: 'fresh', clients: 4 }), startLoad(server.port, { mode: 'keepAlive', clients: 4 })];
  }

  async function finish(loads: Load[]): Promise<{ ok: number; failed: number; failures: string[]; bodies: Map<string, number> }> {
    const reports = await Promise.all(loads.map((l) => l.stop()));
    const bodies = new Map<string, number>();
    for (const r of reports) for (const [body, n] of r.bodies) bodies.set(body, (bodies.get(body) ?? 0) + n);
    return { ok: reports.reduce((n, r) => n + r.ok, 0), failed: reports.reduce((n, r) => n + r.failed, 0), failures: reports.flatMap((r) => r.failures), bodies };
  }

  const progress = (loads: Load[], count: number) => Promise.all(loads.map((l) => l.progress(count)));

  it('replaces a worker that throws from a timer, losing no request', async () => {
    const server = await serve(app, ['--workers', '4']);
    try {
      const loads = load(server);
      await progress(loads, 200);
      assert.equal(await (await fetch(`${server.url}/crash`)).text(), 'crashing');
      await server.waitForLog(/Worker \d+ exited .*; starting a new one[\s\S]*Worker \d+ listening/);
      await progress(loads, 200);
      const result = await finish(loads);
      assert.equal(result.failed, 0, `failures: ${result.failures.join(', ')}`);
    } finally {
      await server.stop();
    }
  });

  it('reloads changed app code on HUP with no request lost', async () => {
    const server = await serve(app, ['--workers', '4']);
    try {
      const loads = load(server);
      await progress(loads, 200);
      writeFileSync(app, readFileSync(app, 'utf8').replace("const VERSION = 'v1'", "const VERSION = 'v2'"));
      server.child.kill('SIGHUP');
      await server.waitForLog(/Reloaded: 4 new workers listen/);
      await server.waitForLog(/Worker process \d+ exited \(exit code 0\)/);
      await progress(loads, 200);
      const result = await finish(loads);
      assert.equal(result.failed, 0, `failures: ${result.failures.join(', ')}`);
      assert.equal(await (await fetch(server.url)).text(), 'v2', 'the new code answers');
      assert.ok(result.bodies.get('v1')! > 0 && result.bodies.get('v2')! > 0);
    } finally {
      await server.stop();
    }
  });

  it('keeps the old workers serving when the new code fails to boot', async () => {
    const server = await serve(app, ['--workers', '2']);
    try {
      writeFileSync(app, "throw new Error('syntax is fine, config is not');\n");
      server.child.kill('SIGHUP');
      await server.waitForLog(/Reload failed, the old workers keep serving: Worker failed to boot: Failed to load/);
      assert.equal(await (await fetch(server.url)).text(), 'v1');
    } finally {
      await server.stop();
    }
  });

  it('adds a worker on TTIN and removes one on TTOU with no request lost', async () => {
    const server = await serve(app, ['--workers', '4']);
    try {
      const loads = load(server);
      await progress(loads, 100);
      server.child.kill('SIGTTIN');
      await server.waitForLog(/going from 4 to 5 workers[\s\S]*Reloaded: 5 new workers/);
      await progress(loads, 100);
      server.child.kill('SIGTTOU');
      await server.waitForLog(/going from 5 to 4 workers[\s\S]*Reloaded: 4 new workers/);
      await server.waitForLog(/Reloaded: 4 new workers[\s\S]*Worker process \d+ exited \(exit code 0\)/);
      await progress(loads, 100);
      const result = await finish(loads);
      assert.equal(result.failed, 0, `failures: ${result.failures.join(', ')}`);
    } finally {
      await server.stop();
    }
  });

  it('recycles workers after --max-requests (with jitter) with no request lost', async () => {
    const server = await serve(app, ['--workers', '4', '--max-requests', '300', '--max-requests-jitter', '100']);
    try {
      const loads = load(server);
      await server.waitForLog(/(Worker \d+ served its \d+ requests \(--max-requests\); recycling it[\s\S]*Worker \d+ recycled: its successor listens[\s\S]*){3}/);
      await progress(loads, 100);
      const result = await finish(loads);
      assert.equal(result.failed, 0, `failures: ${result.failures.join(', ')}`);
      const limits = [...server.log().matchAll(/served its (\d+) requests/g)].map((m) => Number(m[1]));
      assert.ok(limits.every((n) => n >= 300 && n <= 400), `limits drawn: ${limits.join(', ')}`);
    } finally {
      await server.stop();
    }
  });

  it('recycles a worker whose heap passes --max-worker-memory', async () => {
    const server = await serve(app, ['--workers', '1', '--max-worker-memory', '40']);
    try {
      for (let i = 0; i < 5; i++) await (await fetch(`${server.url}/leak`)).text();
      await server.waitForLog(/Worker 1 uses \d+ MB of memory \(--max-worker-memory 40\); recycling it[\s\S]*Worker 1 listening[\s\S]*Worker 1 recycled: its successor listens/);
      await server.waitForLog(/Worker 1's old thread has ended/);
      assert.equal(await (await fetch(server.url)).text(), 'v1');
    } finally {
      await server.stop();
    }
  });

  it('replaces the process of a hung worker (--timeout 3), naming the request; only its requests fail', async () => {
    const server = await serve(app, ['--workers', '4', '--timeout', '3']);
    try {
      const loads = load(server);
      await progress(loads, 100);
      const hung = fetch(`${server.url}/hang?id=42`).catch(() => 'cut');
      await server.waitForLog(/CRITICAL\] Worker \d+ \(pid \d+\) sent no heartbeat for [\d.]+ s while running 'GET http:\/\/127\.0\.0\.1:\d+\/hang\?id=42'; replacing its process/);
      await server.waitForLog(/Worker process \d+ is up \(4 workers, [^)]*\); retiring \d+/);
      await server.waitForLog(/Killing worker process \d+: its healthy workers drained/);
      assert.equal(await hung, 'cut');
      await progress(loads, 200);
      const during = await finish(loads);
      // A client blocks on a request stuck in the hung worker until its process is killed, so
      // each of the 8 clients can lose at most one request, and only to that kill.
      assert.ok(during.failed <= 8, `${during.failed} failed: ${during.failures.join(', ')}`);
      assert.ok(during.failures.every((why) => /closed before a response|ECONNRESET/.test(why)), during.failures.join(', '));
      const again = load(server);
      await progress(again, 200);
      const clean = await finish(again);
      assert.equal(clean.failed, 0, `failures after the replacement: ${clean.failures.join(', ')}`);
    } finally {
      await server.stop();
    }
  });

  it('keeps serving from the other process while a killed one restarts (--processes 2)', async () => {
    const server = await serve(app, ['--workers', '4', '--processes', '2']);
    try {
      assert.match(server.log(), /Listening at: \S+ \(4 workers in 2 processes/);
      const pid = Number(server.log().match(/Booting worker process with pid (\d+)/)![1]);
      process.kill(pid, 'SIGKILL');
      await server.waitForLog(new RegExp(`Worker process ${pid} died`));
      // The survivor's listeners take every new connection meanwhile.
      for (let i = 0; i < 20; i++) assert.equal(await (await fetch(server.url, { headers: { connection: 'close' } })).text(), 'v1');
      await server.waitForLog(/Worker process \d+ is up/);
    } finally {
      await server.stop();
    }
  });

  it('halts with exit code 3 when worker processes keep dying (crash loop)', async () => {
    const server = await serve(app, ['--workers', '1']);
    for (let i = 0; i < 5; i++) {
      await fetch(`${server.url}/die`).catch(() => undefined);
      if (i < 4) await server.waitForLog(new RegExp(`(Worker process \\d+ is up[\\s\\S]*){${i + 1}}`));
    }
    await server.waitForLog(/Shutting down: Worker processes failed 5 times within 60 s; last: worker process \d+ died \(signal SIGKILL\)/);
    assert.equal(await server.exited(), 3);
  });

  it('writes the pid file and removes it on exit', async () => {
    const pidFile = join(dir, 'narwhal.pid');
    const server = await serve(app, ['--workers', '1', '--pid', pidFile]);
    assert.equal(readFileSync(pidFile, 'utf8').trim(), String(server.child.pid));
    assert.equal(await server.stop(), 0);
    assert.ok(!existsSync(pidFile));
  });
});

describe('boot failures do not loop', () => {
  it('exits 4 at once when the app cannot load, with one boot', async () => {
    const { code, stderr } = await runServe([fixture('import-throws.ts'), '--bind', '127.0.0.1:0', '--workers', '2', '--processes', '2']);
    assert.equal(code, 4);
    assert.ok((stderr.match(/Booting worker process/g) ?? []).length <= 2);
  });
});
