/**
 * @module diagram
 * The gateway drawn from its config: one graph (model.ts), rendered as Mermaid or DOT, and as
 * SVG/PNG through Graphviz (`diagram` subcommand, admin page).
 */
export { buildDiagram, matchLabel, triggerLabel, nodeId, type Diagram, type DiagramNode, type DiagramEdge, type DiagramGroup, type NodeKind, type EdgeKind } from './model.js';
export { toMermaid } from './mermaid.js';
export { toDot } from './dot.js';
export { renderGraphviz, GraphvizMissingError, type GraphvizFormat } from './graphviz.js';
export { diagramCommand, type DiagramIo } from './command.js';
export type { EdgeAnnotation } from './groups.js';
