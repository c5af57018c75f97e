import os from 'node:os';

/** The backend's settings, all from the environment. */
export interface BackendConfig {
  /** PORT: the traffic port (default 3000; 0 lets the OS pick). */
  port: number;
  /** CONTROL_PORT: the fault-injection and metrics port (default 3100; 0 lets the OS pick). */
  controlPort: number;
  /** TCP_PORT: the TCP echo port (default 4000; 0 lets the OS pick). */
  tcpPort: number;
  /** HOST: the address every port binds (default 0.0.0.0). */
  host: string;
  /** BACKEND_ID: the id in answers, in `x-backend-id` and in the metrics' `backend` label (default the hostname). */
  backendId: string;
  /** SHUTDOWN_TIMEOUT_MS: how long SIGTERM waits for in-flight requests and TCP connections before closing what is left (default 10000). */
  shutdownTimeoutMs: number;
}

/** readConfig reads the environment; it throws one Error listing every bad variable. */
export function readConfig(env: NodeJS.ProcessEnv): BackendConfig {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}; got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return value;
  };
  const config: BackendConfig = {
    port: int('PORT', 3000, 0, 65535),
    controlPort: int('CONTROL_PORT', 3100, 0, 65535),
    tcpPort: int('TCP_PORT', 4000, 0, 65535),
    host: env.HOST || '0.0.0.0',
    backendId: env.BACKEND_ID || os.hostname(),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 10_000, 0, 3_600_000),
  };
  if (/[\r\n]/.test(config.backendId)) problems.push('BACKEND_ID must be a single line (it is sent as a header and as the TCP greeting line)');
  if (problems.length > 0) throw new Error(problems.join('; '));
  return config;
}
