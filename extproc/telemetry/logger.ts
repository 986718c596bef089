/**
 * @module telemetry/logger
 * Structured JSON logs, one object per line on stdout.
 *
 * The gateway sees prompts, keys and personal data. Nothing here serialises a request body or
 * a header value on its own: callers pass named fields, and `describeBytes` is the only way a
 * body appears in a log line (its length and a short hash, never its content).
 */
import { createHash } from 'node:crypto';

/** Log levels in increasing severity. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Extra structured fields; values must already be safe to log (ids, counts, codes). */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** A sink for finished log lines; stdout by default, an array in tests. */
export type LogSink = (line: string) => void;

/** A logger bound to a set of fields (e.g. the request id). */
export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

const stdoutSink: LogSink = (line) => process.stdout.write(line + '\n');

/** Creates a logger that writes lines at or above `level` to `sink`. */
export function createLogger(level: LogLevel = 'info', sink: LogSink = stdoutSink, bound: LogFields = {}): Logger {
  const threshold = SEVERITY[level];
  const write = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (SEVERITY[lvl] < threshold) return;
    sink(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...bound, ...fields }));
  };
  return {
    level,
    enabled: (lvl) => SEVERITY[lvl] >= threshold,
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    child: (fields) => createLogger(level, sink, { ...bound, ...fields }),
  };
}

/**
 * How a body or secret may appear in a log: `[REDACTED LENGTH=n HASH=xxxxxxxx]`
 * (the form envoyproxy/ai-gateway uses), enough to correlate two lines, never to read.
 */
export function describeBytes(bytes: Uint8Array | string): string {
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 8);
  const length = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  return `[REDACTED LENGTH=${length} HASH=${hash}]`;
}

/** A short, safe description of an unknown thrown value: its class and message, no stack. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * A logger whose destination can be swapped (config reload) while long-lived holders keep the
 * same object: each call goes to the logger set last.
 */
export function switchableLogger(initial: Logger): { logger: Logger; set(next: Logger): void } {
  let target = initial;
  const logger: Logger = {
    get level() {
      return target.level;
    },
    enabled: (lvl) => target.enabled(lvl),
    debug: (msg, fields) => target.debug(msg, fields),
    info: (msg, fields) => target.info(msg, fields),
    warn: (msg, fields) => target.warn(msg, fields),
    error: (msg, fields) => target.error(msg, fields),
    child: (fields) => target.child(fields),
  };
  return { logger, set: (next) => void (target = next) };
}
