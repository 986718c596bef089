/** The JSON logger: levels, bound fields, and the only sanctioned way to mention a body. */
import { describe, expect, it } from 'vitest';
import { createLogger, describeBytes } from '../../extproc/telemetry/logger.js';

describe('logger', () => {
  it('writes one JSON object per line at or above its level, with bound fields', () => {
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l)).child({ request_id: 'r1' });
    log.debug('hidden');
    log.info('shown', { n: 2 });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', msg: 'shown', request_id: 'r1', n: 2 });
    expect(log.enabled('debug')).toBe(false);
  });

  it('describeBytes gives length and a short hash, never the content', () => {
    const secret = 'my card is 4111 1111 1111 1111';
    const d = describeBytes(secret);
    expect(d).toMatch(/^\[REDACTED LENGTH=30 HASH=[0-9a-f]{8}\]$/);
    expect(d).not.toContain('4111');
    expect(describeBytes(Buffer.from(secret))).toBe(d);
  });
});
