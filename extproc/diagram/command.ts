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
  let config: string | undefined;
  let out: string | undefined;
  let format: Format = 'mermaid';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    if (flag === '--config') config = value();
    else if (flag === '--out') out = value();
    else if (flag === '--format') {
      const f = value();
      if (!FORMATS.includes(f as Format)) {
        io.stderr(`diagram: --format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(f ?? '')}\n${usage}`);
        return 2;
      }
      format = f as Format;
    } else if (flag === '--help' || flag === '-h') {
      io.stdout(usage);
      return 0;
    } else {
      io.stderr(`diagram: unknown argument ${JSON.stringify(a)}\n${usage}`);
      return 2;
    }
  }
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
