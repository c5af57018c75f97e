/** log writes one line per event: time, what happened, and key=value details, so that a lab run reads as a story. */
export function log(message: string, details: Record<string, string | number | boolean | undefined> = {}): void {
  const parts = [new Date().toISOString(), message];
  for (const [key, value] of Object.entries(details)) {
    if (value === undefined) continue;
    const text = String(value);
    parts.push(`${key}=${/[\s"]/.test(text) ? JSON.stringify(text) : text}`);
  }
  process.stdout.write(`${parts.join(' ')}\n`);
}

export function logError(message: string, details: Record<string, string | number | boolean | undefined> = {}): void {
  log(`error: ${message}`, details);
}
