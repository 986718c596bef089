/**
 * @module diagram/mermaid
 * A diagram as a Mermaid flowchart (renders on GitHub and GitLab). Labels are quoted and their
 * special characters written as Mermaid entity codes, so any model name draws as text.
 */
import { groupTree, type EdgeAnnotation, type GroupTree } from './groups.js';
import type { Diagram, DiagramEdge, DiagramNode } from './model.js';

/** Text inside a quoted Mermaid label. */
function text(s: string): string {
  return s.replace(/#/g, '#35;').replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
}

function label(lines: readonly string[]): string {
  return `"${lines.flatMap((l) => l.split('\n')).map(text).join('<br/>')}"`;
}

const SHAPES: Record<DiagramNode['kind'], [string, string]> = {
  client: ['(', ')'],
  envoy: ['[', ']'],
  stage: ['[', ']'],
  route: ['{{', '}}'],
  model: ['([', '])'],
  provider: ['[[', ']]'],
  store: ['[(', ')]'],
  observability: ['>', ']'],
};

const ARROWS: Record<DiagramEdge['kind'], string> = {
  flow: '-->',
  grpc: '==>',
  fallback: '-.->',
  data: '-.->',
  control: '-.->',
};

function nodeLine(n: DiagramNode, pad: string): string {
  const [open, close] = SHAPES[n.kind];
  return `${pad}${n.id}${open}${label(n.lines)}${close}`;
}

/** The flowchart source (ends with a newline). `annotate` adds a line to keyed edges' labels. */
export function toMermaid(d: Diagram, annotate?: EdgeAnnotation): string {
  const out = ['flowchart LR'];
  const tree = groupTree(d);
  for (const n of tree.nodes) out.push(nodeLine(n, '  '));
  const walk = (t: GroupTree, depth: number): void => {
    const pad = '  '.repeat(depth);
    out.push(`${pad}subgraph ${t.group.id}[${label([t.group.label])}]`);
    for (const n of t.nodes) out.push(nodeLine(n, pad + '  '));
    for (const c of t.children) walk(c, depth + 1);
    out.push(`${pad}end`);
  };
  for (const g of tree.groups) walk(g, 1);
  for (const e of d.edges) {
    const lines = [e.label, e.key ? annotate?.(e.key) : undefined].filter((l): l is string => l !== undefined && l !== '');
    out.push(`  ${e.from} ${ARROWS[e.kind]}${lines.length ? `|${label(lines)}|` : ''} ${e.to}`);
  }
  const classes: Record<DiagramNode['kind'], string> = {
    client: 'fill:#eef,stroke:#557',
    envoy: 'fill:#fde9d9,stroke:#c0504d',
    stage: 'fill:#e2f0d9,stroke:#548235',
    route: 'fill:#fff2cc,stroke:#bf9000',
    model: 'fill:#ddebf7,stroke:#2f5597',
    provider: 'fill:#ededed,stroke:#595959',
    store: 'fill:#f4e1f7,stroke:#7030a0',
    observability: 'fill:#e7f6f8,stroke:#1f7a8c',
  };
  for (const [kind, style] of Object.entries(classes)) {
    const ids = d.nodes.filter((n) => n.kind === kind).map((n) => n.id);
    if (ids.length) out.push(`  classDef ${kind} ${style}`, `  class ${ids.join(',')} ${kind}`);
  }
  return out.join('\n') + '\n';
}
