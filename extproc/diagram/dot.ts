/**
 * @module diagram/dot
 * A diagram as Graphviz DOT (`dot -Tsvg` draws it; graphviz.ts runs it). Groups become
 * clusters; edge kinds become styles: thick gRPC streams, dashed red fallbacks, dotted backends.
 */
import { groupTree, type EdgeAnnotation, type GroupTree } from './groups.js';
import type { Diagram, DiagramEdge, DiagramNode } from './model.js';

/** A DOT double-quoted string; `\n` separates label lines. */
function q(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, '\\n')}"`;
}

const NODE_STYLE: Record<DiagramNode['kind'], string> = {
  client: 'shape=box, style="rounded,filled", fillcolor="#eeeeff"',
  envoy: 'shape=box, style="rounded,filled", fillcolor="#fde9d9"',
  stage: 'shape=box, style="rounded,filled", fillcolor="#e2f0d9"',
  route: 'shape=hexagon, style=filled, fillcolor="#fff2cc"',
  model: 'shape=box, style="rounded,filled", fillcolor="#ddebf7"',
  provider: 'shape=component, style=filled, fillcolor="#ededed"',
  store: 'shape=cylinder, style=filled, fillcolor="#f4e1f7"',
  observability: 'shape=note, style=filled, fillcolor="#e7f6f8"',
};

const EDGE_STYLE: Record<DiagramEdge['kind'], string> = {
  flow: '',
  grpc: 'penwidth=2.2, color="#c0504d"',
  fallback: 'style=dashed, color="#c00000", fontcolor="#c00000"',
  data: 'style=dotted, color="#7030a0"',
  control: 'style=dashed, color="#808080"',
};

/** The DOT source (ends with a newline). `annotate` adds a line to keyed edges' labels. */
export function toDot(d: Diagram, annotate?: EdgeAnnotation): string {
  const out = [
    'digraph gateway {',
    '  rankdir=LR;',
    '  newrank=true;',
    '  bgcolor="white";',
    '  fontname="Helvetica"; fontsize=11;',
    '  node [fontname="Helvetica", fontsize=10];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ];
  const nodeLine = (n: DiagramNode, pad: string): string => `${pad}${n.id} [label=${q(n.lines.join('\n'))}, ${NODE_STYLE[n.kind]}];`;
  const tree = groupTree(d);
  for (const n of tree.nodes) out.push(nodeLine(n, '  '));
  const walk = (t: GroupTree, depth: number): void => {
    const pad = '  '.repeat(depth);
    out.push(`${pad}subgraph cluster_${t.group.id} {`, `${pad}  label=${q(t.group.label)}; style="rounded,dashed"; color="#999999";`);
    for (const n of t.nodes) out.push(nodeLine(n, pad + '  '));
    for (const c of t.children) walk(c, depth + 1);
    out.push(`${pad}}`);
  };
  for (const g of tree.groups) walk(g, 1);
  for (const e of d.edges) {
    const lines = [e.label, e.key ? annotate?.(e.key) : undefined].filter((l): l is string => l !== undefined && l !== '');
    const attrs = [lines.length ? `label=${q(lines.join('\n'))}` : '', EDGE_STYLE[e.kind], e.key ? `id=${q(`edge:${e.key}`)}` : ''].filter(Boolean);
    out.push(`  ${e.from} -> ${e.to}${attrs.length ? ` [${attrs.join(', ')}]` : ''};`);
  }
  out.push('}');
  return out.join('\n') + '\n';
}
