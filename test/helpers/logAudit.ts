/**
 * Every log line every test gateway writes, over the whole test run, is checked for secrets and
 * personal data: no credential (`sk-…` keys, bearer tokens) and no e-mail address may appear in
 * any of them, whatever the test planted in its prompts and headers. Test gateways record their
 * lines (`recordLogLine`, from test/helpers/gateway.ts) into one file per test process; vitest's
 * global teardown reads them all and fails the run on a leak.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Where the test processes leave their gateways' log lines (one folder per checkout). */
export const LOG_AUDIT_DIR = join(import.meta.dirname, '../../node_modules/.cache/gateway-test-logs');

/** What must never be in a log line. Values tests plant are of these shapes. */
export const LEAK_PATTERNS: readonly (readonly [string, RegExp])[] = [
  ['API key', /\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{6,}/],
  ['bearer token', /\bBearer\s+[A-Za-z0-9._~+/-]{6,}/i],
  ['e-mail address', /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/],
];

let file: string | undefined;

/**
 * Records one gateway log line of this test process. Written at once: vitest may end a worker
 * process without an 'exit' event, and a few thousand small appends cost little.
 */
export function recordLogLine(line: string): void {
  if (file === undefined) {
    mkdirSync(LOG_AUDIT_DIR, { recursive: true });
    file = join(LOG_AUDIT_DIR, `${process.pid}.jsonl`);
  }
  appendFileSync(file, line + '\n');
}

/** vitest globalSetup: start from an empty folder; after the run, fail on any leak. */
export default function setup(): () => void {
  rmSync(LOG_AUDIT_DIR, { recursive: true, force: true });
  mkdirSync(LOG_AUDIT_DIR, { recursive: true });
  return () => {
    const leaks: string[] = [];
    let lines = 0;
    for (const file of readdirSync(LOG_AUDIT_DIR)) {
      for (const line of readFileSync(join(LOG_AUDIT_DIR, file), 'utf8').split('\n')) {
        if (line === '') continue;
        lines++;
        for (const [what, re] of LEAK_PATTERNS) if (re.test(line)) leaks.push(`${what}: ${line.slice(0, 300)}`);
      }
    }
    if (leaks.length > 0) {
      // vitest reports a teardown error but keeps its exit code: set it, and say it plainly.
      process.exitCode = 1;
      process.stderr.write(`log audit FAILED: ${leaks.length} gateway log line(s) of the test run leak secrets or personal data:\n${leaks.slice(0, 20).join('\n')}\n`);
      return;
    }
    process.stdout.write(`log audit: ${lines} gateway log lines of the whole run, none with a key, a bearer token or an e-mail address\n`);
  };
}
