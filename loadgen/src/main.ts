import fs from 'node:fs';
import path from 'node:path';
import { USAGE, UsageError, parseCommand, type Command } from './args.js';
import { runContinuous } from './continuous.js';
import { runOnce, runTcpOnce } from './run.js';
import { formatSummary } from './stats.js';
import { formatTcpSummary } from './tcp-stats.js';

/** jsonTargetProblem checks, before any load is sent, that the --json file can be written. */
function jsonTargetProblem(file: string): string | undefined {
  const resolved = path.resolve(file);
  try {
    if (fs.statSync(resolved).isDirectory()) return `--json ${JSON.stringify(file)} is a directory`;
    fs.accessSync(resolved, fs.constants.W_OK);
    return undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return `--json ${JSON.stringify(file)} is not writable`;
  }
  try {
    fs.accessSync(path.dirname(resolved), fs.constants.W_OK);
    return undefined;
  } catch {
    return `--json ${JSON.stringify(file)}: folder ${JSON.stringify(path.dirname(file))} does not exist or is not writable`;
  }
}

function usageError(problems: string[]): never {
  for (const problem of problems) process.stderr.write(`loadgen: ${problem}\n`);
  process.stderr.write('loadgen: no load was sent; run with --help for usage\n');
  process.exit(2);
}

async function main(): Promise<void> {
  let command: Command;
  try {
    command = parseCommand(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof UsageError) usageError(error.problems);
    throw error;
  }
  if (command.mode === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (command.mode === 'continuous') {
    await runContinuous(command);
    return;
  }
  if (command.json !== undefined) {
    const problem = jsonTargetProblem(command.json);
    if (problem !== undefined) usageError([problem]);
  }
  const { tcp } = command;
  const report = tcp === undefined ? await runOnce(command) : await runTcpOnce({ ...command, tcp });
  process.stdout.write(`${'mode' in report ? formatTcpSummary(report) : formatSummary(report)}\n`);
  if (command.json !== undefined) {
    fs.writeFileSync(command.json, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`  report      ${command.json}\n`);
  }
}

await main();
