import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './processes.js';

export const composeFile = path.join(repoRoot, 'docker-compose.yml');

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell; never rejects, the exit code tells. */
export function run(command: string, args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: repoRoot, env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr: stderr || (error && typeof error.code !== 'number' ? error.message : '') });
    });
  });
}

/** Runs a command and throws with its output when it fails. */
export async function runOrThrow(command: string, args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/**
 * Why the container suites cannot run here, or undefined when a Docker engine and Compose v2 answer.
 * Checked once per test file.
 */
export async function dockerUnavailableReason(): Promise<string | undefined> {
  const info = await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 10_000 });
  if (info.code !== 0) {
    const detail = (info.stderr || info.stdout).trim().split('\n').pop() ?? '';
    return `no Docker engine answers \`docker info\` (${detail || `exit ${info.code}`}); .ci/docker-setup.sh prepares one`;
  }
  const compose = await run('docker', ['compose', 'version'], { timeoutMs: 10_000 });
  if (compose.code !== 0) return 'the Docker engine answers but `docker compose` (Compose v2) is missing; .ci/docker-setup.sh installs it';
  return undefined;
}

/**
 * The test option for a container suite: skipped with the reason where no engine is reachable, except
 * with CI=true, where a missing engine is a failure (a test that fails with the reason is registered).
 */
export function containerSuiteSkip(reason: string | undefined, suite: string): string | false {
  if (reason === undefined) return false;
  if (process.env.CI === 'true') {
    test(`${suite}: a Docker engine is required with CI=true`, () => {
      throw new Error(reason);
    });
    return `CI requires Docker: ${reason}`;
  }
  console.log(`# ${suite}: skipped, ${reason}`);
  return `skipped: ${reason}`;
}

async function imageExists(image: string): Promise<boolean> {
  return (await run('docker', ['image', 'inspect', image], { timeoutMs: 10_000 })).code === 0;
}

/**
 * The images the lab is built from: NODE_IMAGE and PROMETHEUS_IMAGE from the environment when set;
 * otherwise the local images .ci/docker-setup.sh makes for machines without a registry, when they
 * exist; otherwise the compose file's defaults (official images, pulled).
 */
export async function labImageEnv(): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  if (process.env.NODE_IMAGE) env.NODE_IMAGE = process.env.NODE_IMAGE;
  else if (await imageExists('local/node:base')) env.NODE_IMAGE = 'local/node:base';
  if (process.env.PROMETHEUS_IMAGE) env.PROMETHEUS_IMAGE = process.env.PROMETHEUS_IMAGE;
  else if (await imageExists('local/prometheus:lab')) env.PROMETHEUS_IMAGE = 'local/prometheus:lab';
  return env;
}

/** `docker compose` on the lab's compose file under one project name. */
export function composeCommand(project: string, env: Record<string, string>) {
  return (args: string[], timeoutMs?: number): Promise<string> =>
    runOrThrow('docker', ['compose', '-f', composeFile, '-p', project, ...args], timeoutMs === undefined ? { env } : { env, timeoutMs });
}

/** Everything Docker still holds for a compose project: containers, networks, volumes. */
export async function projectLeftovers(project: string): Promise<string[]> {
  const filter = `label=com.docker.compose.project=${project}`;
  const list = async (kind: string, format: string): Promise<string[]> =>
    (await runOrThrow('docker', [...kind.split(' '), '--filter', filter, '--format', format])).split('\n').filter(Boolean).map((name) => `${kind.split(' ')[0]} ${name}`);
  return [...(await list('ps -a', '{{.Names}}')), ...(await list('network ls', '{{.Name}}')), ...(await list('volume ls', '{{.Name}}'))];
}
