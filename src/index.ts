/**
 * The typed library of v2v-load. Import 'reflect-metadata' once before using the container.
 */
export { main as runCli } from './cli/main.js';
export { createRootContainer, createRunContainer } from './di/composition-root.js';
export { TOKENS } from './di/tokens.js';
export type { Accel, CheckResult, DoctorOptions } from './doctor/checks.js';
export { Doctor, type DoctorReport, formatDoctorReport } from './doctor/doctor.js';
export * from './errors.js';
export { type Logger, StreamLogger } from './log/logger.js';
export { LocalNode } from './node/local-node.js';
export type {
  CommandRunner,
  DirEntry,
  FileOps,
  FileStat,
  FileType,
  Node,
  RunOptions,
  RunResult,
} from './node/node.js';
export { NodeFactory } from './node/node-factory.js';
export { formatSshTarget, type NodeSpec, parseSshUrl, type SshTarget } from './node/node-spec.js';
export { quoteArgv, quoteWord } from './node/quote.js';
export { fingerprintOf, type HostKeyPolicy, HostKeyVerifier } from './node/ssh/host-keys.js';
export { SshConnection, type SshConnectionOptions } from './node/ssh/ssh-connection.js';
export { SshNode } from './node/ssh/ssh-node.js';
