import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { adminErrors, lbErrors } from '../../balancer/src/errors.js';
import { repoRoot } from '../helpers/processes.js';

const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

function documented(prefix: string): Map<string, number> {
  const codes = new Map<string, number>();
  for (const match of readme.matchAll(new RegExp(`^\\| \`(${prefix}[A-Z_]+)\` \\| (\\d{3}) \\|`, 'gm'))) codes.set(match[1]!, Number(match[2]));
  return codes;
}

for (const [prefix, registry] of [['LB_ERR_', lbErrors], ['ADMIN_ERR_', adminErrors]] as const) {
  test(`the README's ${prefix} table lists exactly the registry's codes, with the same statuses`, () => {
    const inReadme = documented(prefix);
    for (const [code, { status }] of Object.entries(registry)) {
      assert.equal(inReadme.get(code), status, `${code} (${status}) is missing from the README or has another status there`);
    }
    for (const code of inReadme.keys()) assert.ok(code in registry, `the README documents ${code}, which the balancer never sends`);
  });
}
