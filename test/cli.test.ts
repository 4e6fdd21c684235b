// The command line as a black box: flags, environment, exit codes and messages.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { fixture, runServe, serve } from './helpers.js';

const HELLO = 'apps/hello.ts';

describe('serve command line', () => {
  it('--version names narwhal, Node and the uWS binding that loads', async () => {
    const { code, stdout } = await runServe(['--version']);
    assert.equal(code, 0);
    assert.match(stdout, /^narwhal \d+\.\d+\.\d+\nnode v\d+/);
    assert.match(stdout, /binding (uWebSockets\.js|@btc-vision\/uwebsockets\.js|@trufflesuite\/uws-js-unofficial) \d+\.\d+/);
  });

  it('--help lists every setting with its environment variable', async () => {
    const { code, stdout } = await runServe(['--help']);
    assert.equal(code, 0);
    for (const text of ['--bind', '--workers', '--graceful-timeout', '--log-level', 'NARWHAL_WORKERS', 'WEB_CONCURRENCY']) assert.ok(stdout.includes(text), text);
  });

  const usage: [string, string[], NodeJS.ProcessEnv, RegExp][] = [
    ['an unknown flag', [HELLO, '--wrokers', '2'], {}, /Unknown argument: wrokers/],
    ['zero workers', [HELLO, '--workers', '0'], {}, /--workers must be a whole number of at least 1, not '0'/],
    ['a flag without its value', [HELLO, '--workers'], {}, /Not enough arguments following: workers/],
    ['a bad bind', [HELLO, '--bind', 'localhost:http'], {}, /--bind must look like HOST:PORT, \[IPV6\]:PORT or :PORT, not 'localhost:http'/],
    ['a bad environment variable', [HELLO], { NARWHAL_WORKERS: 'many' }, /NARWHAL_WORKERS must be a whole number of at least 1, not 'many'/],
    ['a bad WEB_CONCURRENCY', [HELLO], { WEB_CONCURRENCY: '-1' }, /WEB_CONCURRENCY must be a whole number/],
    ['a bad log level', [HELLO, '--log-level', 'loud'], {}, /--log-level must be one of debug, info, warning, error, critical, not 'loud'/],
    ['no app', [], {}, /name the app to serve/],
    ['two apps', [HELLO, HELLO], {}, /Unknown argument: apps\/hello\.ts/],
  ];
  for (const [name, args, env, message] of usage) {
    it(`exits 2 naming the problem for ${name}`, async () => {
      const { code, stderr } = await runServe(args, { env });
      assert.equal(code, 2, stderr);
      assert.match(stderr, message);
      assert.match(stderr, /serve --help/);
    });
  }

  it('takes defaults from PORT and WEB_CONCURRENCY as gunicorn does, flags first', async () => {
    const fromEnv = JSON.parse((await runServe([HELLO, '--print-config'], { env: { PORT: '9123', WEB_CONCURRENCY: '3' } })).stdout);
    assert.deepEqual(fromEnv.bind, [{ host: '0.0.0.0', port: 9123 }]);
    assert.equal(fromEnv.workers, 3);
    const flags = JSON.parse((await runServe([HELLO, '--print-config', '-w', '2', '-b', '[::1]:9000', '-b', ':9001'], { env: { PORT: '9123', NARWHAL_WORKERS: '5' } })).stdout);
    assert.deepEqual(flags.bind, [{ host: '::1', port: 9000 }, { host: '0.0.0.0', port: 9001 }]);
    assert.equal(flags.workers, 2);
    const plain = JSON.parse((await runServe([HELLO, '--print-config'], { env: { PORT: '', WEB_CONCURRENCY: '' } })).stdout);
    assert.deepEqual(plain.bind, [{ host: '127.0.0.1', port: 8000 }]);
    assert.ok(plain.app.endsWith('/apps/hello.ts'));
  });

  it('--check-config loads the app once in a child and reports, without serving', async () => {
    const good = await runServe([HELLO, '--check-config', '--workers', '3']);
    assert.equal(good.code, 0);
    assert.match(good.stdout, /App .*apps\/hello\.ts exports a fetch handler; binding \S+/);
    assert.match(good.stdout, /Config OK: 3 workers on http:\/\/127\.0\.0\.1:8000/);
    const bad = await runServe([fixture('bad-shape.ts'), '--check-config']);
    assert.equal(bad.code, 4);
    assert.match(bad.stderr, /does not export a fetch handler/);
  });

  it('exits 1 when another program listens on the port', async () => {
    const other = createServer().listen(0, '127.0.0.1');
    await once(other, 'listening');
    try {
      const port = (other.address() as { port: number }).port;
      const { code, stderr } = await runServe([HELLO, '--bind', `127.0.0.1:${port}`]);
      assert.equal(code, 1);
      assert.match(stderr, new RegExp(`Connection in use: http://127\\.0\\.0\\.1:${port}`));
    } finally {
      other.close();
    }
  });

  it('exits 1 instead of silently sharing the port with a running narwhal (SO_REUSEPORT)', async () => {
    const first = await serve(fixture('echo.ts'), ['--workers', '1']);
    try {
      const { code, stderr } = await runServe([HELLO, '--bind', `127.0.0.1:${first.port}`]);
      assert.equal(code, 1);
      assert.match(stderr, /Connection in use/);
      assert.equal((await fetch(`${first.url}/sync`)).status, 200, 'the first server is unharmed');
    } finally {
      await first.stop();
    }
  });

  it('listens on several binds at once, IPv6 included', async function () {
    const server = await serve(HELLO, ['--workers', '2', '--bind', '[::1]:0']).catch((error: Error) => error);
    if (server instanceof Error) {
      if (/::1|EADDRNOTAVAIL|address/i.test(server.message)) {
        console.log('      SKIPPED: no IPv6 loopback here');
        this.skip();
      }
      throw server;
    }
    try {
      const port = Number(/http:\/\/\[::1\]:(\d+)/.exec(server.log())![1]);
      assert.equal(await (await fetch(`http://[::1]:${port}/`)).text(), 'Hello, World!');
      assert.equal(await (await fetch(`${server.url}/`)).text(), 'Hello, World!');
    } finally {
      await server.stop();
    }
  });

  it('says where it listens and how many workers are up', async () => {
    const server = await serve(HELLO, ['--workers', '3']);
    try {
      assert.match(server.log(), /Listening at: http:\/\/127\.0\.0\.1:\d+ \(3 workers in 1 process, \S+ [\d.]+/);
      assert.equal(await (await fetch(`${server.url}/`)).text(), 'Hello, World!');
    } finally {
      await server.stop();
    }
  });
});
