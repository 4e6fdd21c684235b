// The config file: settings in the precedence chain, server hooks at lifecycle events, and a
// HUP that reads it again.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, runServe, serve } from './helpers.js';

function configSource(workers: number): string {
  return `
const log = (line) => console.error('hook: ' + line);
export default {
  workers: ${workers},
  gracefulTimeout: 5,
  onStarting: ({ config }) => log('onStarting workers=' + config.workers),
  whenReady: ({ config }) => log('whenReady workers=' + config.workers),
  onReload: ({ config }) => log('onReload workers=' + config.workers),
  workerExit: ({ pid, code }) => log('workerExit pid=' + pid + ' code=' + code),
  onExit: ({ exitCode }) => log('onExit code=' + exitCode),
};
`;
}

describe('config file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'narwhal-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is found in the working directory; its hooks run at each lifecycle event; HUP reads it again', async () => {
    writeFileSync(join(dir, 'narwhal.config.mjs'), configSource(2));
    const server = await serve(fixture('echo.ts'), [], { cwd: dir });
    let stopped = false;
    try {
      assert.match(server.log(), /hook: onStarting workers=2[\s\S]*Listening at: \S+ \(2 workers/);
      await server.waitForLog(/hook: whenReady workers=2/);
      writeFileSync(join(dir, 'narwhal.config.mjs'), configSource(3));
      server.child.kill('SIGHUP');
      await server.waitForLog(/hook: onReload workers=3[\s\S]*Reloaded: 3 new workers/);
      await server.waitForLog(/hook: workerExit pid=\d+ code=0/);
      assert.equal(await server.stop(), 0);
      stopped = true;
      assert.match(server.log(), /hook: onExit code=0/);
    } finally {
      if (!stopped) await server.stop();
    }
  });

  it('comes after flags and the environment in precedence', async () => {
    writeFileSync(join(dir, 'narwhal.config.mjs'), 'export default { workers: 2, timeout: 7, maxRequests: 50 };\n');
    const { stdout } = await runServe([fixture('echo.ts'), '--print-config', '--workers', '5'], { cwd: dir, env: { NARWHAL_TIMEOUT: '9' } });
    const config = JSON.parse(stdout);
    assert.equal(config.workers, 5);
    assert.equal(config.timeout, 9);
    assert.equal(config.maxRequests, 50);
    assert.equal(config.configFile, join(dir, 'narwhal.config.mjs'));
  });

  it('takes a TypeScript file given with --config', async () => {
    const path = join(dir, 'prod.config.ts');
    writeFileSync(path, "const workers: number = 4;\nexport default { workers, bind: ['127.0.0.1:9100'] };\n");
    const config = JSON.parse((await runServe([fixture('echo.ts'), '--print-config', '--config', path])).stdout);
    assert.equal(config.workers, 4);
    assert.deepEqual(config.bind, [{ host: '127.0.0.1', port: 9100 }]);
  });

  it('exits 2 naming an unknown setting, a bad value or a missing file', async () => {
    writeFileSync(join(dir, 'narwhal.config.mjs'), 'export default { wrokers: 2 };\n');
    const unknown = await runServe([fixture('echo.ts')], { cwd: dir });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown setting 'wrokers' in .*narwhal\.config\.mjs\. Settings: bind, workers/);
    writeFileSync(join(dir, 'narwhal.config.mjs'), 'export default { workers: 0 };\n');
    const bad = await runServe([fixture('echo.ts')], { cwd: dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /'workers' in the config file must be a whole number of at least 1, not '0'/);
    const missing = await runServe([fixture('echo.ts'), '--config', 'nope.mjs'], { cwd: dir });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--config nope\.mjs: no such file/);
  });
});
