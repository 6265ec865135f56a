#!/usr/bin/env node
// Entry point of the `v2v-load` command. reflect-metadata first, as tsyringe requires.
import 'reflect-metadata';
import { main } from '../dist/cli/main.js';

// SIGINT and SIGTERM interrupt the run: main kills its commands, cleans up, and resolves to
// 130 or 143 (a third signal exits at once). Nothing here calls process.exit.
process.exitCode = await main(process.argv.slice(2), undefined, { processSignals: true });
