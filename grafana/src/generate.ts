import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DASHBOARD_FILE, dashboardJson } from './dashboard.js';

// npm run dashboard: regenerate the committed JSON after a change to dashboard.ts.
writeFileSync(DASHBOARD_FILE, dashboardJson());
process.stdout.write(`wrote ${path.relative(process.cwd(), DASHBOARD_FILE)}\n`);
