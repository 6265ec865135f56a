/**
 * The one place where an argv becomes a POSIX shell command line (for the remote side of an
 * SSH node, where sshd always hands the command to the user's shell).
 *
 * Every word is wrapped in single quotes; a single quote inside a word becomes `'\''`. Inside
 * single quotes a POSIX shell treats every byte literally (`$`, backticks, `\`, `;`, globs,
 * newlines), so each word arrives byte for byte.
 */
export function quoteWord(word: string): string {
  if (word.includes('\0')) {
    throw new TypeError(`a command argument cannot contain a NUL byte: ${JSON.stringify(word)}`);
  }
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Quotes an argv into one shell command line: `'w0' 'w1' ...`. */
export function quoteArgv(argv: readonly string[]): string {
  if (argv.length === 0) throw new TypeError('cannot run an empty argv');
  return argv.map(quoteWord).join(' ');
}
