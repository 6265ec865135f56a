/**
 * One shape for every command: the argument type is inferred from the builder, so the handler
 * sees exactly the options the builder declares, and no cast sits between the two.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from './context.js';

/** A command of `v2v-load` (or of one of its command groups). */
export interface Command<A> {
  command: string;
  describe: string;
  builder: (y: Argv<GlobalArgs>) => Argv<A>;
  handler: (args: ArgumentsCamelCase<A>) => void | Promise<void>;
}

/** Declares a command; `A` is what its builder makes of the global options. */
export function defineCommand<A>(c: Command<A>): CommandModule<GlobalArgs, A> {
  return c;
}
