import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { FIXTURES, fixture, jsonCases, jsonText, streamCases, translateChunks } from './cases.js';
import { mulberry32 } from '../helpers/prng.js';

const prng = mulberry32;

/** Cuts `bytes` into chunks of random sizes up to `max` (fresh copies, as Envoy hands them over). */
function chunked(bytes: Uint8Array, rand: () => number, max: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; ) {
    const len = 1 + Math.floor(rand() * max);
    out.push(new Uint8Array(bytes.subarray(i, i + len)));
    i += len;
  }
  return out;
}

const CHUNKINGS = 1000;

describe('stream translation: golden files', () => {
  for (const c of streamCases) {
    describe(`${c.input} → ${c.expected}`, () => {
      const input = fixture(c.input);
      const expected = readFileSync(FIXTURES + c.expected, 'utf8');

      it('matches the golden output byte for byte', () => {
        expect(translateChunks(c, [input])).toBe(expected);
      });

      it(`gives the same output for ${CHUNKINGS} random chunkings of the input`, () => {
        const rand = prng(0x5eed + c.input.length);
        for (let k = 0; k < CHUNKINGS; k++) {
          // Chunk sizes from single bytes to whole events, so cuts land inside fields, CRLFs and characters.
          const max = [1, 3, 7, 16, 64, 256, 4096][k % 7]!;
          const out = translateChunks(c, chunked(input, rand, max));
          if (out !== expected) expect(out, `chunking ${k} (max ${max})`).toBe(expected);
        }
      });

      it('writes only JSON data lines and well-formed SSE', () => {
        const blocks = expected.split('\n\n');
        expect(blocks.pop()).toBe('');
        for (const b of blocks) {
          for (const line of b.split('\n')) {
            expect(line).toMatch(/^(event|data): /);
            if (line.startsWith('data: ') && line !== 'data: [DONE]') expect(() => JSON.parse(line.slice(6))).not.toThrow();
          }
        }
      });
    });
  }
});

describe('JSON translation: golden files', () => {
  for (const c of jsonCases) {
    it(`${c.input} → ${c.expected}`, () => {
      const input = JSON.parse(fixture(c.input).toString('utf8'));
      const before = JSON.stringify(input);
      expect(jsonText(c.run(input))).toBe(readFileSync(FIXTURES + c.expected, 'utf8'));
      // Translation builds a new body; the parsed request other stages hold is left as it was.
      expect(JSON.stringify(input)).toBe(before);
    });
  }
});
