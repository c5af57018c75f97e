import { z } from 'zod';

const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** parseDuration reads "250ms", "2s", "1m", "1h" or a number of milliseconds; undefined if it is none of these. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const match = DURATION_PATTERN.exec(trimmed);
  return match ? Number(match[1]) * UNIT_MS[match[2]!]! : undefined;
}

/** duration is a zod schema that turns a duration into milliseconds, or reports what it accepts. */
export const duration = z.unknown().transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `invalid duration ${JSON.stringify(value)}: use a number of milliseconds or a string such as "250ms", "2s", "1m"`,
    });
    return z.NEVER;
  }
  return ms;
});
