// Which uWS build loads here, asked of a short-lived child process: the arbiter side never
// loads uWS itself (DESIGN.md). Used by `serve --version` and `serve bench --json`.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BINDING_REPORT = fileURLToPath(new URL('../workers/binding.js', import.meta.url));

/** `name version (path)`; throws with the resolver's explanation when no build loads. */
export function bindingInUse(): string {
  try {
    return execFileSync(process.execPath, [BINDING_REPORT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (error) {
    throw new Error(String((error as { stderr?: string }).stderr ?? error).trim());
  }
}
