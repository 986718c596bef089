/**
 * @module diagram/readme
 * The README's architecture drawing is this command's output for config/gateway.yaml, between
 * two markers; a test compares them. `spliceReadmeDiagram` rewrites the block (the update
 * script in test/diagram uses it), `readmeDiagram` reads it back.
 */
export const README_BEGIN = '<!-- diagram:begin (generated: node dist/extproc/main.js diagram --config config/gateway.yaml --format mermaid) -->';
export const README_END = '<!-- diagram:end -->';

/** The Mermaid source between the markers, or undefined when the README has no such block. */
export function readmeDiagram(readme: string): string | undefined {
  const a = readme.indexOf(README_BEGIN);
  const b = readme.indexOf(README_END);
  if (a < 0 || b < a) return undefined;
  const block = readme.slice(a + README_BEGIN.length, b);
  const m = /```mermaid\n([\s\S]*?)```/.exec(block);
  return m?.[1];
}

/** The README with the block between the markers replaced by `mermaid`. */
export function spliceReadmeDiagram(readme: string, mermaid: string): string {
  const a = readme.indexOf(README_BEGIN);
  const b = readme.indexOf(README_END);
  if (a < 0 || b < a) throw new Error('README has no diagram markers');
  return `${readme.slice(0, a)}${README_BEGIN}\n\`\`\`mermaid\n${mermaid}\`\`\`\n${readme.slice(b)}`;
}
