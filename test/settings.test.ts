// The settings table and the one precedence function, tested directly.
import assert from 'node:assert/strict';
import { resolveSettings } from '../server/config.js';
import { UsageError } from '../server/errors.js';
import { parseBind } from '../server/settings.js';

describe('settings precedence: flags > environment > config file > defaults', () => {
  it('takes the default when nothing is given', () => {
    const settings = resolveSettings({}, {});
    assert.deepEqual(settings.bind, [{ host: '127.0.0.1', port: 8000 }]);
    assert.equal(settings.gracefulTimeout, 30);
    assert.equal(settings.logLevel, 'info');
  });

  it('prefers the config file to the default, the environment to the file, a flag to all', () => {
    const file = { workers: '2' };
    assert.equal(resolveSettings({}, {}, file).workers, 2);
    assert.equal(resolveSettings({}, { NARWHAL_WORKERS: '3' }, file).workers, 3);
    assert.equal(resolveSettings({ workers: '4' }, { NARWHAL_WORKERS: '3' }, file).workers, 4);
  });

  it('ignores empty environment variables', () => {
    assert.equal(resolveSettings({}, { NARWHAL_GRACEFUL_TIMEOUT: '', WEB_CONCURRENCY: '6' }).gracefulTimeout, 30);
    assert.equal(resolveSettings({}, { WEB_CONCURRENCY: '6' }).workers, 6);
  });

  it('names the source of a bad value as the user typed it', () => {
    assert.throws(() => resolveSettings({ gracefulTimeout: 'soon' }, {}), /--graceful-timeout must be a number of seconds/);
    assert.throws(() => resolveSettings({}, { NARWHAL_GRACEFUL_TIMEOUT: '-1' }), /NARWHAL_GRACEFUL_TIMEOUT must be/);
    assert.throws(() => resolveSettings({}, {}, { workers: '1.5' }), /'workers' in the config file must be a whole number/);
    assert.throws(() => resolveSettings({}, { PORT: '99999' }), UsageError);
  });

  it('collects a repeated --bind, also comma-separated', () => {
    assert.deepEqual(resolveSettings({ bind: ['127.0.0.1:1', '[::1]:2,:3'] }, {}).bind, [
      { host: '127.0.0.1', port: 1 },
      { host: '::1', port: 2 },
      { host: '0.0.0.0', port: 3 },
    ]);
  });
});

describe('--bind addresses', () => {
  const good: [string, string, number][] = [
    ['127.0.0.1:8000', '127.0.0.1', 8000],
    ['localhost:80', 'localhost', 80],
    ['[::1]:8080', '::1', 8080],
    [':9000', '0.0.0.0', 9000],
    ['0.0.0.0', '0.0.0.0', 8000],
    ['127.0.0.1:0', '127.0.0.1', 0],
  ];
  for (const [text, host, port] of good) {
    it(`reads ${text}`, () => assert.deepEqual(parseBind(text, '--bind'), { host, port }));
  }
  for (const text of ['127.0.0.1:70000', '[127.0.0.1]:80', 'a b:80', '::1:80', 'host:port']) {
    it(`refuses ${text}`, () => assert.throws(() => parseBind(text, '--bind'), /--bind must look like/));
  }
});
