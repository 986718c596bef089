/**
 * @module diagram/command
 * `diagram --config FILE --format mermaid|dot|svg|png [--out FILE]`: draws the gateway as the
 * config sets it up. Mermaid and DOT print to stdout (or `--out`); SVG and PNG run Graphviz's
 * `dot` and need `--out` for PNG (binary) unless stdout is redirected. `${ENV}` references
 * resolve against the environment; no secret is drawn (labels hold names, not URLs or keys).
 */
import { writeFile } from 'node:fs/promises';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { toDot } from './dot.js';
import { GraphvizMissingError, renderGraphviz } from './graphviz.js';
import { toMermaid } from './mermaid.js';
import { buildDiagram } from './model.js';
import { parseFlags } from '../cliArgs.js';

export interface DiagramIo {
  readonly stdout: (data: string | Uint8Array) => void;
  readonly stderr: (text: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

const FORMATS = ['mermaid', 'dot', 'svg', 'png'] as const;
type Format = (typeof FORMATS)[number];

const usage = 'usage: diagram --config FILE [--format mermaid|dot|svg|png] [--out FILE]\n';

/**
 * Runs the command with the arguments after `diagram`; resolves to the exit code (0 drawn,
 * 1 bad config or Graphviz missing/failed, 2 bad usage). Never throws.
 */
export async function diagramCommand(
  argv: readonly string[],
  io: DiagramIo = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) },
): Promise<number> {
  const parsed = parseFlags('diagram', argv, ['config', 'out', 'format'], usage, io);
  if ('exit' in parsed) return parsed.exit;
  const { config, out } = parsed.values;
  const f = parsed.values.format ?? 'mermaid';
  if (!FORMATS.includes(f as Format)) {
    io.stderr(`diagram: --format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(f)}\n${usage}`);
    return 2;
  }
  const format = f as Format;
  if (!config) {
    io.stderr(`diagram: --config FILE is required\n${usage}`);
    return 2;
  }
  try {
    const diagram = buildDiagram(await loadConfigFile(config, io.env ?? process.env));
    const data: string | Buffer =
      format === 'mermaid' ? toMermaid(diagram) : format === 'dot' ? toDot(diagram) : await renderGraphviz(toDot(diagram), format, (io.env ?? process.env)['GRAPHVIZ_DOT'] ?? 'dot');
    if (out) await writeFile(out, data);
    else io.stdout(data);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) io.stderr(`${err.message}\n`);
    else if (err instanceof GraphvizMissingError) io.stderr(`diagram: ${err.message}\n`);
    else io.stderr(`diagram: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
