/**
 * The run's cleanup stack, scope and signal-bound node (src/run/): LIFO, every step runs even
 * when one fails, handed-over resources are not touched, an interruption is what the awaiting
 * code throws.
 */
import { describe, expect, it } from 'vitest';
import { CommandError, ExitCode, InterruptedError } from '../../src/errors.js';
import type { Logger } from '../../src/log/logger.js';
import { LocalNode } from '../../src/node/local-node.js';
import { CleanupStack } from '../../src/run/cleanup.js';
import { handleProcessSignals } from '../../src/run/process-signals.js';
import { RunScope } from '../../src/run/run-scope.js';
import { bindSignal } from '../../src/run/signal-bound-node.js';

function memoryLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    debug: (m) => lines.push(`debug: ${m}`),
    info: (m) => lines.push(`info: ${m}`),
    warn: (m) => lines.push(`warn: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
  };
}

describe('CleanupStack', () => {
  it('runs every step last-registered first, even after a failing one, and logs the failure', async () => {
    const log = memoryLog();
    const stack = new CleanupStack(log);
    const ran: string[] = [];
    stack.defer('a', () => void ran.push('a'));
    stack.defer('b', async () => {
      ran.push('b');
      throw new Error('disk gone');
    });
    stack.defer('c', () => void ran.push('c'));
    await stack.run();
    expect(ran).toEqual(['c', 'b', 'a']);
    expect(log.lines.filter((l) => l.startsWith('warn:'))).toEqual([
      'warn: cleanup failed: b: disk gone',
    ]);
    expect(stack.size).toBe(0);
    await stack.run();
    expect(ran).toEqual(['c', 'b', 'a']);
  });

  it('a dismissed step never runs; runNow runs a step once, now', async () => {
    const stack = new CleanupStack();
    const ran: string[] = [];
    const kept = stack.defer('kept output', () => void ran.push('kept'));
    const now = stack.defer('now', () => void ran.push('now'));
    stack.defer('last', () => void ran.push('last'));
    kept.dismiss();
    await now.runNow();
    await now.runNow();
    expect(ran).toEqual(['now']);
    await stack.run();
    expect(ran).toEqual(['now', 'last']);
  });

  it('steps registered while it runs run too', async () => {
    const stack = new CleanupStack();
    const ran: string[] = [];
    stack.defer('outer', () => {
      ran.push('outer');
      stack.defer('inner', () => void ran.push('inner'));
    });
    await stack.run();
    expect(ran).toEqual(['outer', 'inner']);
  });
});

describe('RunScope', () => {
  it('SIGINT gives 130, SIGTERM 143; the first signal wins', () => {
    const a = new RunScope();
    expect(a.signal.aborted).toBe(false);
    a.interrupt('SIGINT');
    a.interrupt('SIGTERM');
    expect(a.signal.aborted).toBe(true);
    expect(a.interruption).toBeInstanceOf(InterruptedError);
    expect(a.interruption?.exitStatus).toBe(ExitCode.Interrupted);
    expect(a.interruption?.exitStatus).toBe(130);
    const b = new RunScope();
    b.interrupt('SIGTERM');
    expect(b.interruption?.exitStatus).toBe(143);
    expect(b.interruption?.toJSON()).toMatchObject({ code: 'INTERRUPTED', signal: 'SIGTERM' });
  });
});

describe('handleProcessSignals', () => {
  it('the first signal interrupts, the second only warns, the third exits with the first status', () => {
    const scope = new RunScope();
    const log = memoryLog();
    const exits: number[] = [];
    const listeners = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];
    const release = handleProcessSignals(scope, log, (status) => {
      exits.push(status);
      return undefined as never;
    });
    try {
      process.emit('SIGTERM', 'SIGTERM');
      expect(scope.interruption?.signal).toBe('SIGTERM');
      expect(exits).toEqual([]);
      process.emit('SIGINT', 'SIGINT');
      expect(scope.interruption?.signal).toBe('SIGTERM');
      expect(exits).toEqual([]);
      expect(log.lines).toEqual([
        'warn: SIGTERM received: stopping and cleaning up (send it twice more to exit at once)',
        'warn: cleaning up; signal again to force exit (temporary files may be left behind)',
      ]);
      process.emit('SIGINT', 'SIGINT');
      expect(exits).toEqual([143]);
    } finally {
      release();
    }
    expect([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]).toEqual(listeners);
  });
});

describe('bindSignal', () => {
  it('kills a running command when the run is interrupted and throws the interruption', async () => {
    const scope = new RunScope();
    const node = bindSignal(new LocalNode(), scope.signal);
    const running = node.run(['sleep', '30']);
    setTimeout(() => scope.interrupt('SIGTERM'), 100);
    const err = await running.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).signal).toBe('SIGTERM');
    // Once interrupted, no new command starts.
    const after = await node.run(['true']).catch((e: unknown) => e);
    expect(after).toBe(err);
  });

  it('leaves every other member and a command failure as they are', async () => {
    const scope = new RunScope();
    const inner = new LocalNode();
    const node = bindSignal(inner, scope.signal);
    expect(node.name).toBe('local');
    expect(node.isLocal).toBe(true);
    expect(await node.stat('/nonexistent-v2v-load-test')).toBeUndefined();
    const failed = await node.run(['false']).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(CommandError);
    expect((failed as CommandError).aborted).toBe(false);
  });

  it("the caller's own signal still works beside the run's", async () => {
    const scope = new RunScope();
    const node = bindSignal(new LocalNode(), scope.signal);
    const own = new AbortController();
    const running = node.run(['sleep', '30'], { signal: own.signal });
    setTimeout(() => own.abort(), 100);
    const err = await running.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).aborted).toBe(true);
    expect(scope.signal.aborted).toBe(false);
  });
});
