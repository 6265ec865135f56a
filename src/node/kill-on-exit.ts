/**
 * Local commands run in their own process group (so a timeout can kill a whole tree). The
 * price: a Ctrl-C at the terminal no longer reaches them. An interrupted run kills them itself
 * (its AbortSignal is bound to every command, see src/run/); this registry is the last line:
 * it kills every group still running when v2v-load exits however it exits (a forced exit
 * after a third signal, an uncaught exception, process.exit by an embedding program).
 */
class KillOnExit {
  private readonly groups = new Set<number>();
  private installed = false;

  /** Tracks the process group led by `pid`; returns the function that stops tracking it. */
  track(pid: number): () => void {
    this.install();
    this.groups.add(pid);
    return () => {
      this.groups.delete(pid);
    };
  }

  private install(): void {
    if (this.installed) return;
    this.installed = true;
    process.on('exit', () => {
      for (const pid of this.groups) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
}

export const killAllOnExit = new KillOnExit();
