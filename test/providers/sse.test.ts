import { describe, it, expect } from 'vitest';
import { SseParser, formatSseEvent, type SseEvent } from '../../extproc/providers/sse.js';

const enc = new TextEncoder();

function ev(data: string, event?: string, id?: string, retry?: number): SseEvent {
  return { event, data, id, retry };
}

/** Feeds `bytes` cut at the given offsets; returns every event and the final pendingBytes. */
function feed(bytes: Uint8Array, cuts: number[]): { events: SseEvent[]; pending: number } {
  const p = new SseParser();
  const events: SseEvent[] = [];
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    // Fresh copies: the parser must not keep references into a buffer the caller reuses.
    const chunk = new Uint8Array(bytes.subarray(prev, c));
    events.push(...p.push(chunk));
    chunk.fill(0x78);
    prev = c;
  }
  events.push(...p.end());
  return { events, pending: p.pendingBytes };
}

interface Fixture {
  name: string;
  bytes: Uint8Array;
  events: SseEvent[];
  pending?: number;
}

const anthropicLike =
  'event: message_start\r\ndata: {"type":"message_start"}\r\n\r\n' +
  ': ping comment\r\n' +
  'event: content_block_delta\r\ndata: {"text":"h\u00e9llo \u20ac \ud83d\ude00"}\r\n\r\n' +
  'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n';

const fixtures: Fixture[] = [
  {
    name: 'OpenAI-style LF stream with [DONE]',
    bytes: enc.encode('data: {"a":1}\n\ndata: {"b":"\u00fc"}\n\ndata: [DONE]\n\n'),
    events: [ev('{"a":1}'), ev('{"b":"\u00fc"}'), ev('[DONE]')],
  },
  {
    name: 'CRLF stream with events, a comment and 2-, 3- and 4-byte characters',
    bytes: enc.encode(anthropicLike),
    events: [
      ev('{"type":"message_start"}', 'message_start'),
      ev('{"text":"h\u00e9llo \u20ac \ud83d\ude00"}', 'content_block_delta'),
      ev('{"type":"message_stop"}', 'message_stop'),
    ],
  },
  {
    name: 'CR-only line ends',
    bytes: enc.encode('event: x\rdata: 1\r\rdata: 2\rdata: 3\r\r'),
    events: [ev('1', 'x'), ev('2\n3')],
  },
  {
    name: 'mixed line ends, data with and without the space, multi-line data',
    bytes: enc.encode('data:a\r\ndata: b\rdata:  c\n\ndata\n\n'),
    events: [ev('a\nb\n c'), ev('')],
  },
  {
    name: 'leading BOM stripped once; a second BOM is part of a field name (ignored line)',
    bytes: new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode('data: x\n\n\ufeffdata: y\n\ndata: z\n\n')]),
    events: [ev('x'), ev('z')],
  },
  {
    name: 'blocks without data are not dispatched; event type resets; unknown fields ignored',
    bytes: enc.encode('event: lonely\n\n: only a comment\n\nfoo: bar\ndata: d\n\nevent\ndata: e\n\n'),
    events: [ev('d'), ev('e')],
  },
  {
    name: 'id persists, an id with NULL is ignored, empty id resets; retry only when digits',
    bytes: enc.encode('id: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid: 8\u0000\nretry: 12x\ndata: c\n\nid\ndata: d\n\n'),
    events: [ev('a', undefined, '7', 1500), ev('b', undefined, '7'), ev('c', undefined, '7'), ev('d', undefined, '')],
  },
  {
    name: 'unterminated trailing event is discarded and reported as pending bytes',
    bytes: enc.encode('data: 1\n\ndata: 2\ndata: 3'),
    events: [ev('1')],
    pending: 15,
  },
  {
    name: 'trailing line without the blank line is discarded',
    bytes: enc.encode('data: 1\r\n\r\ndata: 2\r\n'),
    events: [ev('1')],
    pending: 9,
  },
  {
    name: 'a colon inside the value and a field with no colon',
    bytes: enc.encode('event: a:b\ndata: {"k":"v: w"}\n\n'),
    events: [ev('{"k":"v: w"}', 'a:b')],
  },
];

describe('SseParser', () => {
  for (const f of fixtures) {
    describe(f.name, () => {
      it('whole', () => {
        const r = feed(f.bytes, []);
        expect(r.events).toEqual(f.events);
        expect(r.pending).toBe(f.pending ?? 0);
      });
      it('split at every point', () => {
        for (let c = 0; c <= f.bytes.length; c++) {
          const r = feed(f.bytes, [c]);
          expect(r.events, `cut at ${c}`).toEqual(f.events);
          expect(r.pending, `cut at ${c}`).toBe(f.pending ?? 0);
        }
      });
      it('split at every pair of points', () => {
        for (let a = 1; a < f.bytes.length; a += 3) {
          for (let b = a; b <= f.bytes.length; b++) {
            const r = feed(f.bytes, [a, b]);
            expect(r.events, `cuts ${a},${b}`).toEqual(f.events);
          }
        }
      });
      it('one byte at a time', () => {
        const cuts = Array.from({ length: f.bytes.length }, (_, i) => i);
        const r = feed(f.bytes, cuts);
        expect(r.events).toEqual(f.events);
        expect(r.pending).toBe(f.pending ?? 0);
      });
    });
  }

  it('decodes a character split inside its bytes (3- and 4-byte UTF-8)', () => {
    const bytes = enc.encode('data: \u20ac\ud83d\ude00\n\n');
    // "data: " is 6 bytes; € is bytes 6..8, 😀 is bytes 9..12.
    for (const cuts of [[7], [8], [10], [11], [12], [7, 8, 10, 11, 12]]) {
      expect(feed(bytes, cuts).events).toEqual([ev('\u20ac\ud83d\ude00')]);
    }
  });

  it('treats a CR at the end of one chunk and an LF at the start of the next as one line end', () => {
    const p = new SseParser();
    expect(p.push(enc.encode('data: a\r'))).toEqual([]);
    // Were this LF a second line end, it would be a blank line dispatching "a" on its own.
    expect(p.push(enc.encode('\ndata: b\r'))).toEqual([]);
    expect(p.push(enc.encode('\n\r'))).toEqual([ev('a\nb')]);
    expect(p.pendingBytes).toBe(0);
    expect(p.push(enc.encode('\n'))).toEqual([]);
    expect(p.pendingBytes).toBe(0);
  });

  it('hands events back as they complete, not at the end', () => {
    const p = new SseParser();
    expect(p.push(enc.encode('data: one\n'))).toEqual([]);
    expect(p.pendingBytes).toBe(10);
    expect(p.push(enc.encode('\ndata: tw'))).toEqual([ev('one')]);
    expect(p.pendingBytes).toBe(8);
    expect(p.push(enc.encode('o\n\n'))).toEqual([ev('two')]);
    expect(p.pendingBytes).toBe(0);
    expect(p.end()).toEqual([]);
  });

  it('returns the same frozen empty array when nothing completes', () => {
    const p = new SseParser();
    const a = p.push(enc.encode('data: x'));
    const b = p.push(new Uint8Array(0));
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
  });

  it('keeps an incomplete line whose buffer the caller then reuses', () => {
    const p = new SseParser();
    const buf = new Uint8Array(64);
    const first = enc.encode('data: hel');
    buf.set(first);
    p.push(buf.subarray(0, first.length));
    buf.fill(0);
    const second = enc.encode('lo\n\n');
    buf.set(second);
    expect(p.push(buf.subarray(0, second.length))).toEqual([ev('hello')]);
  });

  it('parses a long line delivered in many chunks', () => {
    const payload = 'x'.repeat(100_000) + '\u00e9';
    const bytes = enc.encode(`data: ${payload}\n\n`);
    const cuts: number[] = [];
    for (let c = 1; c < bytes.length; c += 997) cuts.push(c);
    expect(feed(bytes, cuts).events).toEqual([ev(payload)]);
  });
});

describe('formatSseEvent', () => {
  it('writes the canonical form', () => {
    expect(formatSseEvent({ event: 'message_stop', data: '{"type":"message_stop"}' })).toBe(
      'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    );
    expect(formatSseEvent({ data: '[DONE]' })).toBe('data: [DONE]\n\n');
    expect(formatSseEvent({ data: 'a\nb\r\nc', id: '4' })).toBe('id: 4\ndata: a\ndata: b\ndata: c\n\n');
    expect(formatSseEvent({ data: '' })).toBe('data: \n\n');
  });

  it('round-trips through the parser', () => {
    const samples = [
      { event: 'x', data: 'one\ntwo', id: '9' },
      { data: ' leading space kept' },
      { data: '' },
      { event: 'e', data: '\n' },
    ];
    const text = samples.map(formatSseEvent).join('');
    const out = feed(enc.encode(text), []).events;
    expect(out).toEqual([ev('one\ntwo', 'x', '9'), ev(' leading space kept', undefined, '9'), ev('', undefined, '9'), ev('\n', 'e', '9')]);
  });

  it('refuses an event name with a line break', () => {
    expect(() => formatSseEvent({ event: 'a\nb', data: '' })).toThrow(RangeError);
  });
});
