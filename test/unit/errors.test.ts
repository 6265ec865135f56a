import { describe, expect, it } from 'vitest';
import {
  CommandError,
  ConnectionLostError,
  ExitCode,
  HostKeyMismatchError,
  hasCause,
  NodeUnreachableError,
  UsageError,
  V2vError,
} from '../../src/errors.js';

const outcome = {
  argv: ['qemu-img', 'info', '/images/my disk.qcow2'],
  node: 'ssh://root@vmhost1:22',
  exitCode: 1,
  signal: undefined,
  stdout: '',
  stderr: "qemu-img: Could not open '/images/my disk.qcow2': No such file or directory\n",
  durationMs: 12,
  timedOut: false,
  aborted: false,
};

describe('error taxonomy', () => {
  it('a command error names the command, the node, the exit code and stderr', () => {
    const e = new CommandError(outcome);
    expect(e.message).toBe(
      '`qemu-img info "/images/my disk.qcow2"` on ssh://root@vmhost1:22 exited with code 1: ' +
        "qemu-img: Could not open '/images/my disk.qcow2': No such file or directory",
    );
    expect(e.exitCode).toBe(1);
    expect(e.exitStatus).toBe(ExitCode.Failure);
    expect(e.toJSON()).toMatchObject({ code: 'COMMAND_FAILED', argv: outcome.argv, exitCode: 1 });
  });

  it('a timed-out command says so', () => {
    const e = new CommandError({ ...outcome, node: 'local', timedOut: true, exitCode: undefined });
    expect(e.message).toMatch(/^`qemu-img info "\/images\/my disk.qcow2"` timed out after 12 ms/);
  });

  it('exit statuses: usage 2, unreachable 3', () => {
    expect(new UsageError('x').exitStatus).toBe(2);
    expect(new NodeUnreachableError('n', 'x').exitStatus).toBe(3);
    expect(new HostKeyMismatchError('n', 'SHA256:a', 'SHA256:b').exitStatus).toBe(3);
  });

  it('a lost connection is retryable and names the command', () => {
    const e = new ConnectionLostError('ssh://root@h:22', ['sleep', '30']);
    expect(e.retryable).toBe(true);
    expect(e.message).toContain('`sleep 30`');
  });

  it('hasCause follows the cause chain', () => {
    const inner = new UsageError('inner');
    const outer = new V2vError('outer', { cause: new Error('middle', { cause: inner }) });
    expect(hasCause(outer, UsageError)).toBe(true);
    expect(hasCause(outer, NodeUnreachableError)).toBe(false);
  });
});
