/**
 * Rewrites the expected outputs of the golden cases from the current translation code. Run
 * `npx tsx test/providers/write-golden.ts` after a deliberate change, then review the diff of
 * `test/providers/fixtures/`: the golden files are the specification.
 */
import { writeFileSync } from 'node:fs';
import { FIXTURES, fixture, jsonCases, jsonText, streamCases, translateChunks } from './cases.js';

for (const c of streamCases) writeFileSync(FIXTURES + c.expected, translateChunks(c, [fixture(c.input)]));
for (const c of jsonCases) writeFileSync(FIXTURES + c.expected, jsonText(c.run(JSON.parse(fixture(c.input).toString('utf8')))));
console.log(`wrote ${streamCases.length + jsonCases.length} golden files`);
