/**
 * @module cliArgs
 * Flags of the gateway's subcommands (`render-envoy`, `diagram`): `--name value` or
 * `--name=value`, `--help`/`-h`, and a usage error naming the argument for anything else.
 */

/** Where a subcommand writes. */
export interface CommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/**
 * The values of `flags` (names without `--`), or the exit code to return at once: 0 after
 * printing the usage for `--help`, 2 after a usage error.
 */
export function parseFlags<F extends string>(
  command: string,
  argv: readonly string[],
  flags: readonly F[],
  usage: string,
  io: CommandIo,
): { values: Partial<Record<F, string>> } | { exit: number } {
  const values: Partial<Record<F, string>> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (flag === '--help' || flag === '-h') {
      io.stdout(usage);
      return { exit: 0 };
    }
    const name = flag.slice(2) as F;
    if (!flag.startsWith('--') || !flags.includes(name)) {
      io.stderr(`${command}: unknown argument ${JSON.stringify(a)}\n${usage}`);
      return { exit: 2 };
    }
    const value = inline ?? argv[++i];
    if (value !== undefined) values[name] = value;
  }
  return { values };
}
