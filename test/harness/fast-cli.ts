/**
 * `v2v-load` with the test stand-in converter (fast-converter.ts): for tests that kill or
 * interrupt a batch or an import as a process and care about what happens around the
 * conversion. Run with `node --import tsx test/harness/fast-cli.ts ARGS...`.
 */
import 'reflect-metadata';
import { main } from '../../src/cli/main.js';
import { registerFastConverter } from './fast-converter.js';

process.exitCode = await main(process.argv.slice(2), undefined, {
  processSignals: true,
  configure: registerFastConverter,
});
