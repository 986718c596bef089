/**
 * @module diagram/groups
 * The nesting of a diagram's groups, walked the same way by every renderer: each group with its
 * nodes and child groups, in the order the model declared them.
 */
import type { Diagram, DiagramGroup, DiagramNode } from './model.js';

export interface GroupTree {
  readonly group: DiagramGroup;
  readonly nodes: readonly DiagramNode[];
  readonly children: readonly GroupTree[];
}

/** Top-level nodes and group trees. Groups with no node anywhere inside are left out. */
export function groupTree(d: Diagram): { nodes: DiagramNode[]; groups: GroupTree[] } {
  const build = (g: DiagramGroup): GroupTree => ({
    group: g,
    nodes: d.nodes.filter((n) => n.group === g.id),
    children: d.groups.filter((c) => c.parent === g.id).map(build).filter(nonEmpty),
  });
  const known = new Set(d.groups.map((g) => g.id));
  return {
    nodes: d.nodes.filter((n) => n.group === undefined || !known.has(n.group)),
    groups: d.groups.filter((g) => g.parent === undefined).map(build).filter(nonEmpty),
  };
}

function nonEmpty(t: GroupTree): boolean {
  return t.nodes.length > 0 || t.children.length > 0;
}

/** Extra text for an edge's label (the admin page's live counts); undefined: none. */
export type EdgeAnnotation = (key: string) => string | undefined;
