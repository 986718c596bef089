/**
 * @module diagram/graphviz
 * Runs Graphviz's `dot` binary (Debian package `graphviz`) to turn DOT into SVG or PNG. The
 * binary is optional: without it `renderGraphviz` rejects with `GraphvizMissingError`, whose
 * message says what to install.
 */
import { spawn } from 'node:child_process';

export type GraphvizFormat = 'svg' | 'png';

/** `dot` is not installed (or not on PATH). */
export class GraphvizMissingError extends Error {
  constructor(command: string) {
    super(`Graphviz "${command}" was not found: install it (Debian/Ubuntu: apt-get install graphviz) or use --format mermaid|dot`);
    this.name = 'GraphvizMissingError';
  }
}

/** Draws `dot` source as SVG or PNG bytes. `command` defaults to `dot` on PATH (env GRAPHVIZ_DOT overrides). */
export function renderGraphviz(source: string, format: GraphvizFormat, command = process.env['GRAPHVIZ_DOT'] ?? 'dot'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [`-T${format}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new GraphvizMissingError(command) : e));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`${command} -T${format} exited with ${code}: ${Buffer.concat(err).toString('utf8').trim().slice(0, 500)}`));
    });
    // A missing binary errors on stdin too; the 'error' handler above reports it.
    child.stdin.on('error', () => undefined);
    child.stdin.end(source);
  });
}
