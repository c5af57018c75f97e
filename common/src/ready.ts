import { log, LOG_LEVELS, type LogDetails } from './log.js';

/** A parsed ready line: the service and its key=value fields, quoted values unquoted. */
export interface ReadyLine {
  service: string;
  fields: Record<string, string>;
}

/**
 * readyLine logs `<service> listening key=value ...`, the one line that says the service takes requests.
 * Print it last: after onShutdown, so that a signal sent as soon as it is read is handled.
 */
export function readyLine(service: string, fields: LogDetails): void {
  log.info(`${service} listening`, fields);
}

const FIELD = /([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g;
// Time and level are optional, so that lines of a service not yet on this logger parse too.
const READY = new RegExp(`^(?:\\d{4}-\\d\\d-\\d\\dT\\S+ )?(?:(?:${LOG_LEVELS.join('|')}) )?(\\S+) listening((?: ${FIELD.source})*)$`);

/** parseReadyLine reads a line that readyLine wrote; undefined for any other line. */
export function parseReadyLine(line: string): ReadyLine | undefined {
  const match = READY.exec(line.trimEnd());
  if (!match) return undefined;
  const fields: Record<string, string> = {};
  for (const [, key, value] of match[2]!.matchAll(FIELD)) fields[key!] = value!.startsWith('"') ? (JSON.parse(value!) as string) : value!;
  return { service: match[1]!, fields };
}
