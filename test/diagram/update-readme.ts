/**
 * Rewrites the README's generated architecture drawing from config/gateway.yaml:
 *   npx tsx test/diagram/update-readme.ts
 * (test/diagram/readme.test.ts fails while the README copy is stale).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile } from '../../extproc/config/load.js';
import { buildDiagram, toMermaid } from '../../extproc/diagram/index.js';
import { spliceReadmeDiagram } from '../../extproc/diagram/readme.js';

const root = join(import.meta.dirname, '../..');
const readmePath = join(root, 'README.md');
void (async () => {
  const config = await loadConfigFile(join(root, 'config/gateway.yaml'), {});
  writeFileSync(readmePath, spliceReadmeDiagram(readFileSync(readmePath, 'utf8'), toMermaid(buildDiagram(config))));
  process.stdout.write('README.md: architecture diagram updated\n');
})();
