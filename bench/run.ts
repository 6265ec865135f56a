/**
 * `npm run bench -- NAME`: runs bench/NAME.ts, which prints its figures and ends with one JSON
 * line `{"bench": NAME, ...}`.
 */
import 'reflect-metadata';

const BENCHES: Record<string, () => Promise<{ run(): Promise<void> }>> = {
  'ssh-roundtrip': () => import('./ssh-roundtrip.js'),
  copy: () => import('./copy.js'),
  cow: () => import('./cow.js'),
  'convert-vs-virt-v2v': () => import('./convert-vs-virt-v2v.js'),
  batch: () => import('./batch.js'),
  load: () => import('./load.js'),
  queue: () => import('./queue.js'),
};

const name = process.argv[2];
const load = name ? BENCHES[name] : undefined;
if (!load) {
  process.stderr.write(
    `usage: npm run bench -- NAME\nbenchmarks: ${Object.keys(BENCHES).join(', ')}\n`,
  );
  process.exit(2);
}
await (await load()).run();
