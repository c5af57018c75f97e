export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogDetails = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(message: string, details?: LogDetails): void;
  info(message: string, details?: LogDetails): void;
  warn(message: string, details?: LogDetails): void;
  error(message: string, details?: LogDetails): void;
}

/** formatLine is one event: `<ISO time> <level> <message> key=value ...`, values with spaces or quotes JSON-quoted. */
export function formatLine(level: LogLevel, message: string, details: LogDetails = {}, time = new Date()): string {
  const parts = [time.toISOString(), level, message];
  for (const [key, value] of Object.entries(details)) {
    if (value === undefined) continue;
    const text = String(value);
    parts.push(`${key}=${/[\s"]/.test(text) ? JSON.stringify(text) : text}`);
  }
  return parts.join(' ');
}

/** createLogger writes the lines at `threshold` and above, each with its newline, to `write` (default stdout). */
export function createLogger(threshold: LogLevel = 'info', write: (text: string) => void = (text) => process.stdout.write(text)): Logger {
  const lowest = LOG_LEVELS.indexOf(threshold);
  const at = (level: LogLevel) => (message: string, details?: LogDetails): void => {
    if (LOG_LEVELS.indexOf(level) >= lowest) write(`${formatLine(level, message, details)}\n`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

const envLevel = process.env.LOG_LEVEL?.trim().toLowerCase() || 'info';

/** The services' logger, on stdout, at the level of the environment variable LOG_LEVEL (default info). */
export const log: Logger = createLogger(isLogLevel(envLevel) ? envLevel : 'info');
if (!isLogLevel(envLevel)) log.warn(`LOG_LEVEL ${JSON.stringify(envLevel)} is not one of ${LOG_LEVELS.join(', ')}; logging at info`);
