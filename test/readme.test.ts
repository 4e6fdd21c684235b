// The README is the front door: keep its promises true.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { settingsReference } from '../server/settings.js';
import { ROOT } from './helpers.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('README', () => {
  it('opens with the two commands that work on a fresh clone', () => {
    const firstBlock = /```\n([\s\S]*?)```/.exec(readme)![1]!;
    assert.deepEqual(firstBlock.trim().split('\n'), ['npm install && npx serve apps/hello.ts --workers 4', 'npm install && npm test']);
  });

  it('has the settings reference derived from the settings table', () => {
    const section = /<!-- settings:start -->\n([\s\S]*?)\n<!-- settings:end -->/.exec(readme)?.[1];
    assert.equal(section, settingsReference(), 'regenerate the table from settingsReference() in server/settings.ts');
  });
});
