// Finds the uWebSockets.js build that loads here. Upstream publishes only on GitHub; the npm
// packages are third-party rebuilds (DESIGN.md has the table). First that loads wins:
//   1. uWebSockets.js                  the official build, if the user installed it from GitHub
//   2. @btc-vision/uwebsockets.js      v20.57 core, needs glibc >= 2.38 (Debian 13, not 12)
//   3. @trufflesuite/uws-js-unofficial v20.3x core, Node <= 20; its binary is required directly,
//      because its entry point silently falls back to a slow pure-JS server when the binary
//      does not load, and that fallback cannot share a port between threads.
// Run as a script, it prints the build that loads (`serve --version` uses that).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { BootError } from '../server/errors.js';
import type { UwsModule } from './uws.js';

export interface Binding {
  readonly name: string;
  readonly version: string;
  /** What to require in every thread. */
  readonly path: string;
}

export interface Candidate {
  readonly name: string;
  /** Where to require it from; throws when it is not installed. */
  locate(require: NodeJS.Require): string;
}

const abi = `${process.platform}_${process.arch}_${process.versions.modules}`;

const CANDIDATES: readonly Candidate[] = [
  { name: 'uWebSockets.js', locate: (require) => require.resolve('uWebSockets.js') },
  { name: '@btc-vision/uwebsockets.js', locate: (require) => require.resolve('@btc-vision/uwebsockets.js') },
  {
    name: '@trufflesuite/uws-js-unofficial',
    locate: (require) => {
      const root = dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
      return join(root, 'binaries', `uws_${abi}.node`);
    },
  },
];

function packageVersion(require: NodeJS.Require, name: string): string {
  const file = require.resolve(`${name}/package.json`);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

export function loadBinding(path: string): UwsModule {
  const mod = createRequire(import.meta.url)(path) as UwsModule;
  // A real native build exports the listen option; the fork's JS fallback does not.
  if (typeof mod.App !== 'function' || !('LIBUS_LISTEN_EXCLUSIVE_PORT' in mod)) {
    throw new Error('not a native uWebSockets.js build');
  }
  return mod;
}

/** The first build that loads, looked up from the user's project and then from narwhal's own. */
export function resolveBinding(cwd: string = process.cwd(), candidates: readonly Candidate[] = CANDIDATES): Binding {
  const requires = [createRequire(join(cwd, 'package.json')), createRequire(import.meta.url)];
  const failures: string[] = [];
  for (const candidate of candidates) {
    let reason = 'not installed';
    for (const require of requires) {
      let path: string;
      try {
        path = candidate.locate(require);
      } catch {
        continue;
      }
      try {
        loadBinding(path);
        return { name: candidate.name, version: packageVersion(require, candidate.name), path };
      } catch (error) {
        reason = (error as Error).message.split('\n').find((line) => line.trim() !== '') ?? String(error);
      }
    }
    failures.push(`  ${candidate.name}: ${reason}`);
  }
  throw new BootError(
    `No uWebSockets.js binding loads on Node ${process.version} (${abi}):\n${failures.join('\n')}\n` +
      'Install the official build (see the README), or use Node 20 with @trufflesuite/uws-js-unofficial.',
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const binding = resolveBinding();
    process.stdout.write(`${binding.name} ${binding.version} (${binding.path})\n`);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 3;
  }
}
