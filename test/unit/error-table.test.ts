import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { lbErrors } from '../../balancer/src/errors.js';
import { repoRoot } from '../helpers/processes.js';

test("the README's error table lists exactly the registry's codes, with the same statuses", () => {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const documented = new Map<string, number>();
  for (const match of readme.matchAll(/^\| `(LB_ERR_[A-Z_]+)` \| (\d{3}) \|/gm)) documented.set(match[1]!, Number(match[2]));
  const registered = new Map(Object.entries(lbErrors).map(([code, { status }]) => [code, status]));
  for (const [code, status] of registered) assert.equal(documented.get(code), status, `${code} (${status}) is missing from the README or has another status there`);
  for (const code of documented.keys()) assert.ok(registered.has(code), `the README documents ${code}, which the balancer never sends`);
});
