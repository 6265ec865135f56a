#!/usr/bin/env node
// Entry point of the `v2v-load` command. reflect-metadata first, as tsyringe requires.
import 'reflect-metadata';
import { main } from '../dist/cli/main.js';

process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
process.exitCode = await main(process.argv.slice(2));
