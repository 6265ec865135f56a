/**
 * Domain states and reasons, typed, in libvirt's own words (as `virsh domstate --reason`
 * prints them), with libvirt's numeric codes (as `virsh domstats --raw` reports them).
 */

/** Every state, indexed by libvirt's virDomainState number. */
export const DOMAIN_STATES = [
  'no state',
  'running',
  'idle',
  'paused',
  'in shutdown',
  'shut off',
  'crashed',
  'pmsuspended',
] as const;
export type DomainStateName = (typeof DOMAIN_STATES)[number];

/** Reasons of each state, indexed by libvirt's reason number (virDomain*Reason enums). */
export const STATE_REASONS = {
  'no state': ['unknown'],
  running: [
    'unknown',
    'booted',
    'migrated',
    'restored',
    'from snapshot',
    'unpaused',
    'migration canceled',
    'save canceled',
    'event wakeup',
    'crashed',
    'post-copy',
    'post-copy failed',
  ],
  idle: ['unknown'],
  paused: [
    'unknown',
    'user',
    'migrating',
    'saving',
    'dumping',
    'I/O error',
    'watchdog',
    'from snapshot',
    'shutting down',
    'creating snapshot',
    'crashed',
    'starting up',
    'post-copy',
    'post-copy failed',
    'api error',
  ],
  'in shutdown': ['unknown', 'user'],
  'shut off': [
    'unknown',
    'shutdown',
    'destroyed',
    'crashed',
    'migrated',
    'saved',
    'failed',
    'from snapshot',
    'daemon',
  ],
  crashed: ['unknown', 'panicked'],
  pmsuspended: ['unknown'],
} as const satisfies Record<DomainStateName, readonly string[]>;

/** A reason of any state. */
export type DomainStateReason = (typeof STATE_REASONS)[DomainStateName][number];

/** A domain's state and why it is in it. */
export interface DomainState {
  state: DomainStateName;
  reason: DomainStateReason;
}

/** True for states in which QEMU runs (libvirt's "active"). */
export function isActiveState(state: DomainStateName): boolean {
  return state !== 'shut off' && state !== 'no state';
}

function isStateName(s: string): s is DomainStateName {
  return (DOMAIN_STATES as readonly string[]).includes(s);
}

/**
 * Parses `virsh domstate --reason` output, e.g. `running (booted)` or `shut off (destroyed)`.
 * @throws Error naming the text when the state or reason is not one libvirt defines.
 */
export function parseDomState(text: string): DomainState {
  const line = text.trim();
  const m = /^(.+?)(?: \((.+)\))?$/.exec(line);
  const state = m?.[1] ?? '';
  if (!isStateName(state)) throw new Error(`unknown domain state in virsh output: "${line}"`);
  const reason = m?.[2] ?? 'unknown';
  const reasons: readonly string[] = STATE_REASONS[state];
  if (!reasons.includes(reason)) {
    throw new Error(`unknown reason "${reason}" of state "${state}" in virsh output: "${line}"`);
  }
  return { state, reason: reason as DomainStateReason };
}

/** The state and reason of libvirt's numeric codes (`state.state`, `state.reason`). */
export function stateFromCodes(stateCode: number, reasonCode: number): DomainState {
  const state = DOMAIN_STATES[stateCode];
  if (state === undefined) throw new Error(`unknown domain state code ${stateCode}`);
  const reasons: readonly DomainStateReason[] = STATE_REASONS[state];
  return { state, reason: reasons[reasonCode] ?? 'unknown' };
}
