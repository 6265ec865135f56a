/**
 * How v2v-load logs in to a node, in OpenSSH's order: the keys of the SSH agent
 * (SSH_AUTH_SOCK) first, then the --identity key file, or without --identity the default key
 * files (~/.ssh/id_ed25519, id_ecdsa, id_rsa). It never prompts: a key protected by a
 * passphrase is used through the agent (`ssh-add FILE`), or with its passphrase in the
 * environment variable V2V_LOAD_SSH_PASSPHRASE (never on the command line).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import ssh2, { type ParsedKey } from 'ssh2';
import { UsageError } from '../../errors.js';

/** The environment variable that may hold the passphrase of an encrypted key. */
export const PASSPHRASE_ENV = 'V2V_LOAD_SSH_PASSPHRASE';

/** Key files tried when no --identity is given, in ~/.ssh. */
export const DEFAULT_KEY_FILES = ['id_ed25519', 'id_ecdsa', 'id_rsa'] as const;

/** A private key file, read and parsed (decrypted, when a passphrase was given). */
export interface SshKey {
  file: string;
  key: ParsedKey;
}

/** How the client proves who it is: every way, in the order they are tried. */
export interface SshAuth {
  /** Path of an SSH agent socket: its keys are tried first. */
  agent?: string | undefined;
  /** Key files tried after the agent, in order. */
  keys: SshKey[];
  /** Key files that could not be used: a passphrase protects them and none was given. */
  locked: string[];
  /** The --identity file, when one was given (for messages). */
  identity?: string | undefined;
}

/** Where {@link loadAuth} looks. Every field defaults to the process's environment. */
export interface AuthSources {
  /** --identity FILE. */
  identity?: string | undefined;
  /** SSH agent socket (default: SSH_AUTH_SOCK). */
  agentSocket?: string | undefined;
  /** Home directory holding .ssh/ (default: the user's). */
  home?: string | undefined;
  /** Passphrase of encrypted keys (default: V2V_LOAD_SSH_PASSPHRASE). */
  passphrase?: string | undefined;
  /** Told about a default key that was skipped, and why. */
  debug?: ((message: string) => void) | undefined;
}

type Parsed = { ok: ParsedKey } | { locked: true } | { badPassphrase: true } | { error: string };

function parse(data: Buffer, passphrase: string | undefined): Parsed {
  // ssh2 is CommonJS: `utils` is not a named export Node can see, so take it off the default.
  let parsed = ssh2.utils.parseKey(data, passphrase);
  if (Array.isArray(parsed)) parsed = parsed[0] as ParsedKey | Error;
  if (parsed instanceof Error) {
    if (/no passphrase given/i.test(parsed.message)) return { locked: true };
    if (/bad passphrase|integrity check failed|decrypt/i.test(parsed.message)) {
      return { badPassphrase: true };
    }
    return { error: parsed.message };
  }
  if (!parsed.isPrivateKey()) return { error: 'a public key, not a private key' };
  return { ok: parsed };
}

/** The error for a key that a passphrase protects, when nothing could unlock it. */
export function lockedKeyError(file: string, explicit: boolean, hadAgent: boolean): UsageError {
  const what = explicit ? `--identity '${file}'` : `SSH key ${file}`;
  const agentNote = hadAgent ? ' and no key of the SSH agent was accepted' : '';
  return new UsageError(
    `${what}: the key is protected by a passphrase, which v2v-load does not prompt for${agentNote}`,
    {
      hint:
        `load it into an SSH agent (eval "$(ssh-agent)"; ssh-add ${file}) and rerun: the ` +
        `agent's keys are tried first; or put the passphrase in ${PASSPHRASE_ENV}`,
    },
  );
}

/**
 * Reads the keys to log in with. Throws a {@link UsageError} (before any connection) when
 * the --identity file is missing, unreadable, not a key, or locked with no agent to try
 * first, or when there is nothing at all to log in with.
 */
export async function loadAuth(sources: AuthSources, nodeName: string): Promise<SshAuth> {
  const agent = sources.agentSocket ?? (process.env.SSH_AUTH_SOCK || undefined);
  const passphrase = sources.passphrase ?? (process.env[PASSPHRASE_ENV] || undefined);
  const auth: SshAuth = { agent, keys: [], locked: [], identity: sources.identity };

  if (sources.identity !== undefined) {
    const file = sources.identity;
    const shown = `--identity '${file}'`;
    let data: Buffer;
    try {
      data = await fs.readFile(file);
    } catch (e) {
      throw new UsageError(
        `${shown}: cannot read the key: ${(e as NodeJS.ErrnoException).code ?? e}`,
        { hint: 'give the path of a private key file (OpenSSH or PEM format)' },
      );
    }
    const p = parse(data, passphrase);
    if ('ok' in p) auth.keys.push({ file, key: p.ok });
    else if ('badPassphrase' in p) {
      throw new UsageError(
        `${shown}: the passphrase in ${PASSPHRASE_ENV} does not decrypt the key`,
        {
          hint: `check ${PASSPHRASE_ENV}, or load the key into an SSH agent (ssh-add ${file}) and unset it`,
        },
      );
    } else if ('locked' in p) {
      // ssh would try the agent first, then ask for the passphrase: without an agent, say now.
      if (!agent) throw lockedKeyError(file, true, false);
      auth.locked.push(file);
    } else {
      throw new UsageError(`${shown}: not a private key v2v-load can read (${p.error})`, {
        hint: 'give the path of a private key file (OpenSSH or PEM format), not the .pub file',
      });
    }
    return auth;
  }

  const home = sources.home ?? os.homedir();
  for (const name of DEFAULT_KEY_FILES) {
    const file = path.join(home, '.ssh', name);
    let data: Buffer;
    try {
      data = await fs.readFile(file);
    } catch {
      continue;
    }
    const p = parse(data, passphrase);
    if ('ok' in p) auth.keys.push({ file, key: p.ok });
    else if ('error' in p) sources.debug?.(`${file}: skipped, not a usable key (${p.error})`);
    else {
      sources.debug?.(`${file}: skipped, a passphrase protects it`);
      auth.locked.push(file);
    }
  }
  if (!agent && auth.keys.length === 0) {
    const first = auth.locked[0];
    if (first !== undefined) throw lockedKeyError(first, false, false);
    throw new UsageError(`no SSH key for ${nodeName}`, {
      hint: 'give a key with --identity FILE, or start an SSH agent (SSH_AUTH_SOCK)',
    });
  }
  return auth;
}
