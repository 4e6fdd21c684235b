// The app contract: every accepted module shape and file type, framework apps in a user's own
// folder, the startup/shutdown hooks, and the exit codes for apps that cannot be served.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, ROOT, runServe, serve } from './helpers.js';

describe('app shapes', () => {
  const cases: [string, string, string][] = [
    ['export default function', 'shape-function.ts', 'function GET'],
    ['a named fetch export (.mjs)', 'shape-named.mjs', 'named /'],
    ['export default { fetch } (.js)', 'shape-object.js', 'object js'],
    ['module.exports = { fetch } (.cjs)', 'shape-commonjs.cjs', 'commonjs'],
    ['an .mts module', 'shape-typescript.mts', '{"text":"mts"}'],
    ['a Hono app (export default app)', 'shape-hono.ts', 'hono root'],
    ['a .ts file compiled as CommonJS (default.default)', 'cjs-package/app.ts', 'typescript compiled as commonjs'],
  ];
  for (const [name, file, expected] of cases) {
    it(`serves ${name}`, async () => {
      const server = await serve(fixture(file), ['--workers', '1']);
      try {
        assert.equal(await (await fetch(`${server.url}/`)).text(), expected);
      } finally {
        await server.stop();
      }
    });
  }
});

describe('framework apps in a user\'s own folder', () => {
  let project: string;
  before(() => {
    // A folder outside narwhal with its own node_modules and nothing of ours (no tsx).
    project = mkdtempSync(join(tmpdir(), 'narwhal-user-'));
    cpSync(fixture('user-project'), project, { recursive: true });
    mkdirSync(join(project, 'node_modules'));
    for (const name of ['hono', 'itty-router']) symlinkSync(join(ROOT, 'node_modules', name), join(project, 'node_modules', name), 'dir');
  });
  after(() => rmSync(project, { recursive: true, force: true }));

  it('runs a Hono app unchanged', async () => {
    const server = await serve(join(project, 'hono-app.ts'), ['--workers', '2'], { cwd: project });
    try {
      const user = await fetch(`${server.url}/users/42?sort=asc`);
      assert.equal(user.headers.get('x-powered-by'), 'hono');
      assert.deepEqual(await user.json(), { id: '42', sort: 'asc' });
      const created = await fetch(`${server.url}/users`, { method: 'POST', body: JSON.stringify({ name: 'ada' }), headers: { 'content-type': 'application/json' } });
      assert.equal(created.status, 201);
      assert.deepEqual(await created.json(), { created: { name: 'ada' } });
      assert.equal((await fetch(`${server.url}/nope`)).status, 404);
    } finally {
      await server.stop();
    }
  });

  it('runs an itty-router app unchanged', async () => {
    const server = await serve('itty-app.ts', ['--workers', '2'], { cwd: project });
    try {
      assert.deepEqual(await (await fetch(`${server.url}/hello/world`)).json(), { hello: 'world' });
      const echoed = await fetch(`${server.url}/echo`, { method: 'POST', body: '[1,2,3]' });
      assert.deepEqual(await echoed.json(), { echoed: [1, 2, 3] });
    } finally {
      await server.stop();
    }
  });
});

describe('startup and shutdown hooks', () => {
  it('awaits startup() before taking traffic and shutdown() on a graceful stop', async () => {
    const server = await serve(fixture('hooks.ts'), ['--workers', '2']);
    let stopped = false;
    try {
      for (let i = 0; i < 10; i++) assert.match(await (await fetch(`${server.url}/`)).text(), /^ready \d+$/);
      assert.equal(await server.stop(), 0);
      stopped = true;
      const ran = server.log().match(/app event: shutdown ran in thread \d+/g) ?? [];
      assert.equal(ran.length, 2, 'once per worker');
    } finally {
      if (!stopped) await server.stop();
    }
  });
});

describe('apps that cannot be served', () => {
  it('exits 4 and shows the accepted shapes when the app exports no fetch handler', async () => {
    const { code, stderr } = await runServe([fixture('bad-shape.ts'), '--bind', '127.0.0.1:0', '--workers', '2']);
    assert.equal(code, 4);
    assert.match(stderr, /bad-shape\.ts does not export a fetch handler; it exports default \(object\), handler \(function\)/);
    assert.match(stderr, /export default \{ fetch\(request, info\)/);
    assert.equal(stderr.match(/Booting worker process/g)?.length, 1, 'no restart loop');
  });

  it('exits 4 with the error when the app throws while loading', async () => {
    const { code, stderr } = await runServe([fixture('import-throws.ts'), '--bind', '127.0.0.1:0', '--workers', '1']);
    assert.equal(code, 4);
    assert.match(stderr, /Failed to load .*import-throws\.ts: Error: database URL missing/);
  });

  it('exits 4 when the startup hook fails', async () => {
    const { code, stderr } = await runServe([fixture('startup-throws.ts'), '--bind', '127.0.0.1:0', '--workers', '1']);
    assert.equal(code, 4);
    assert.match(stderr, /startup hook failed: Error: cannot reach the database/);
  });

  it('exits 4 when the app file does not exist', async () => {
    const { code, stderr } = await runServe(['apps/nope.ts']);
    assert.equal(code, 4);
    assert.match(stderr, /App not found: .*apps\/nope\.ts/);
  });
});
