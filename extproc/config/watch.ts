/**
 * @module config/watch
 * Calls back when the config file changes. Watches the folder, not the file: editors and
 * Kubernetes ConfigMap updates replace the file (rename or symlink swap), which a watch on the
 * old inode would miss. Bursts of events are folded into one reload.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/** Stops watching. */
export type StopWatching = () => void;

/** Watches `path`; `onChange` runs at most once per `debounceMs` burst. */
export function watchFile(path: string, onChange: () => void, debounceMs = 150): StopWatching {
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined = watch(dirname(path), (_event, changed) => {
    // Some platforms omit the name; a Kubernetes swap changes `..data`, not the file's name.
    if (changed !== null && changed !== name && !changed.startsWith('..')) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  watcher.unref();
  return () => {
    clearTimeout(timer);
    watcher?.close();
    watcher = undefined;
  };
}
