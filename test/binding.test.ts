// The uWS binding resolver: the first build that loads wins; otherwise one error names each.
import assert from 'node:assert/strict';
import { resolveBinding, type Candidate } from '../workers/binding.js';
import { BootError, EXIT } from '../server/errors.js';
import { fixture, ROOT } from './helpers.js';

describe('uWS binding resolver', () => {
  it('loads a native build on this machine', () => {
    const binding = resolveBinding(ROOT);
    assert.match(binding.name, /uWebSockets\.js|uwebsockets\.js|uws-js-unofficial/);
    assert.match(binding.path, /\.(node|js)$/);
  });

  it('names every candidate and why it failed when none loads, with exit code 3', () => {
    const candidates: Candidate[] = [
      { name: 'not-installed', locate: (require) => require.resolve('narwhal-no-such-package') },
      { name: 'wrong-abi', locate: () => '/nonexistent/uws_linux_x64_999.node' },
      { name: 'js-fallback', locate: () => fixture('fake-uws.cjs') },
    ];
    assert.throws(
      () => resolveBinding(ROOT, candidates),
      (error: unknown) => {
        assert.ok(error instanceof BootError);
        assert.equal(error.exitCode, EXIT.boot);
        assert.match(error.message, /No uWebSockets\.js binding loads on Node v\d+/);
        assert.match(error.message, /not-installed: not installed/);
        assert.match(error.message, /wrong-abi: Cannot find module '\/nonexistent\/uws_linux_x64_999\.node'/);
        assert.match(error.message, /js-fallback: not a native uWebSockets\.js build/);
        return true;
      },
    );
  });
});
