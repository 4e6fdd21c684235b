// Worker threads and the process model: threads share the port, graceful stop, supervision.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { fixture, rawExchange, serve } from './helpers.js';

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

describe('worker threads', () => {
  it('runs 4 workers as 4 distinct threads that all receive connections', async () => {
    const server = await serve(fixture('echo.ts'), ['--workers', '4']);
    try {
      const seen = new Map<string, number>();
      for (let i = 0; i < 80; i++) {
        // A new connection each time: the kernel spreads connections, not requests.
        const { responses } = await rawExchange(server.port, 'GET /sync HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        const thread = responses[0]!.body.toString();
        seen.set(thread, (seen.get(thread) ?? 0) + 1);
      }
      assert.equal(seen.size, 4, `connections reached ${[...seen].map(([t, n]) => `${t}: ${n}`).join(', ')}`);
    } finally {
      await server.stop();
    }
  });

  it('lets an in-flight request finish on SIGTERM, then exits 0 and frees the port', async () => {
    const server = await serve(fixture('hooks.ts'), ['--workers', '2']);
    const slow = fetch(`${server.url}/slow?ms=1500`).then((response) => response.text());
    await server.waitForLog(/app event: slow request started/);
    const code = await server.stop('SIGTERM');
    assert.equal(await slow, 'finished after 1500 ms');
    assert.equal(code, 0);
    assert.match(server.log(), /Handling signal: SIGTERM; shutting down gracefully/);
    assert.ok(await refused(server.port), 'nothing listens any more');
  });

  it('stops quickly on SIGINT (Ctrl-C), cutting in-flight requests, and exits 0', async () => {
    const server = await serve(fixture('hooks.ts'), ['--workers', '2']);
    const slow = fetch(`${server.url}/slow?ms=20000`).then(
      () => 'answered',
      () => 'cut',
    );
    await server.waitForLog(/app event: slow request started/);
    assert.equal(await server.stop('SIGINT'), 0);
    assert.equal(await slow, 'cut');
    assert.match(server.log(), /Handling signal: SIGINT; shutting down now, cutting in-flight requests/);
  });

  it('cuts in-flight requests on a second signal', async () => {
    const server = await serve(fixture('hooks.ts'), ['--workers', '1']);
    const slow = fetch(`${server.url}/slow?ms=20000`).then(
      () => 'answered',
      () => 'cut',
    );
    await server.waitForLog(/app event: slow request started/);
    server.child.kill('SIGTERM');
    await server.waitForLog(/shutting down gracefully/);
    const started = Date.now();
    assert.equal(await server.stop('SIGTERM'), 0);
    assert.equal(await slow, 'cut');
    assert.ok(Date.now() - started < 10_000, 'the second signal did not wait for the request');
  });

  it('boots a new worker process when the old one is killed', async () => {
    const server = await serve(fixture('echo.ts'), ['--workers', '2']);
    try {
      const pid = Number(server.log().match(/Booting worker process with pid (\d+)/)![1]);
      process.kill(pid, 'SIGKILL');
      await server.waitForLog(new RegExp(`Worker process ${pid} died \\(signal SIGKILL\\); booting a new one[\\s\\S]*Worker process \\d+ is up`));
      assert.equal((await fetch(`${server.url}/sync`)).status, 200);
    } finally {
      await server.stop();
    }
  });
});
