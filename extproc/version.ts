/** @module version — the package version, read once from package.json. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** Walks up from this file to the package root (works from extproc/ and from dist/extproc/). */
function findPackageJson(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'package.json');
    try {
      readFileSync(candidate);
      return candidate;
    } catch {
      dir = dirname(dir);
    }
  }
  throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
}

/** Root folder of the package (holds package.json and protos/). */
export const packageRoot = dirname(findPackageJson());

/** `version` field of package.json. */
export const version: string = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
