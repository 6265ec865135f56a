/**
 * Parsers of virsh's text output where no structured form exists (`dominfo`, `domblkinfo`,
 * `snapshot-info`: "Key:   value" lines) and of `domstats --raw` (key=value lines).
 * Golden files of real output are under test/golden/virsh/.
 */
import { DOMAIN_STATES, type DomainStateName } from './state.js';

/** "Key:   value" lines into a map (keys as printed). */
export function parseKeyValueLines(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    out.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return out;
}

/** What `virsh dominfo` reports (libvirt's virDomainGetInfo plus a few flags). */
export interface DomainInfo {
  /** Set while the domain runs. */
  id: number | undefined;
  name: string;
  uuid: string;
  osType: string;
  state: DomainStateName;
  vcpus: number;
  /** CPU time used, in seconds (only while running). */
  cpuTimeSeconds: number | undefined;
  maxMemoryKiB: number;
  memoryKiB: number;
  persistent: boolean;
  autostart: boolean;
  managedSave: boolean;
}

function need(map: Map<string, string>, key: string, what: string): string {
  const v = map.get(key);
  if (v === undefined) throw new Error(`${what}: no "${key}" line`);
  return v;
}

function kibValue(v: string, key: string, what: string): number {
  const m = /^(\d+) KiB$/.exec(v);
  if (!m?.[1]) throw new Error(`${what}: "${key}" is "${v}", expected "N KiB"`);
  return Number(m[1]);
}

/** Parses `virsh dominfo` output. */
export function parseDomInfo(text: string, what = 'virsh dominfo'): DomainInfo {
  const m = parseKeyValueLines(text);
  const id = need(m, 'Id', what);
  const state = need(m, 'State', what);
  if (!(DOMAIN_STATES as readonly string[]).includes(state)) {
    throw new Error(`${what}: unknown state "${state}"`);
  }
  const cpu = m.get('CPU time');
  return {
    id: id === '-' ? undefined : Number(id),
    name: need(m, 'Name', what),
    uuid: need(m, 'UUID', what),
    osType: need(m, 'OS Type', what),
    state: state as DomainStateName,
    vcpus: Number(need(m, 'CPU(s)', what)),
    cpuTimeSeconds: cpu === undefined ? undefined : Number(cpu.replace(/s$/, '')),
    maxMemoryKiB: kibValue(need(m, 'Max memory', what), 'Max memory', what),
    memoryKiB: kibValue(need(m, 'Used memory', what), 'Used memory', what),
    persistent: need(m, 'Persistent', what) === 'yes',
    autostart: need(m, 'Autostart', what) === 'enable',
    managedSave: m.get('Managed save') === 'yes',
  };
}

/** One domain's block of `virsh domstats --raw`: key → value (numbers stay strings). */
export type DomainStats = Map<string, string>;

/** Parses `virsh domstats --raw` into one map per domain name. */
export function parseDomStatsRaw(text: string): Map<string, DomainStats> {
  const out = new Map<string, DomainStats>();
  let current: DomainStats | undefined;
  for (const line of text.split('\n')) {
    const head = /^Domain: '(.*)'$/.exec(line);
    if (head) {
      current = new Map();
      out.set(head[1] ?? '', current);
      continue;
    }
    const kv = /^\s+([^=]+)=(.*)$/.exec(line);
    if (kv && current) current.set(kv[1] ?? '', kv[2] ?? '');
  }
  return out;
}

/** The numeric stats under `prefix.` (e.g. `block.0`), keys without the prefix. */
export function statsUnder(stats: DomainStats, prefix: string): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const [k, v] of stats) {
    if (!k.startsWith(`${prefix}.`)) continue;
    const n = Number(v);
    out[k.slice(prefix.length + 1)] = v !== '' && Number.isFinite(n) ? n : v;
  }
  return out;
}

/** `virsh domblkinfo` (bytes). */
export interface BlockInfo {
  capacity: number;
  allocation: number;
  physical: number;
}

/** Parses `virsh domblkinfo DOMAIN DEVICE` (without --human). */
export function parseBlockInfo(text: string, what = 'virsh domblkinfo'): BlockInfo {
  const m = parseKeyValueLines(text);
  return {
    capacity: Number(need(m, 'Capacity', what)),
    allocation: Number(need(m, 'Allocation', what)),
    physical: Number(need(m, 'Physical', what)),
  };
}

/**
 * "key : value" lines (`schedinfo`, `blkiotune`, `memtune`) or "[device] key value" lines
 * (`dommemstat`, `domblkstat`, `domifstat`) into numbers where they are numbers.
 */
export function parseNameValueLines(text: string): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const line of text.split('\n')) {
    let key: string | undefined;
    let value: string | undefined;
    const colon = line.indexOf(':');
    // "key : value" — not a MAC or path in "[device] key value" lines.
    if (colon > 0 && /^\s*[A-Za-z_][\w.-]*\s*:(\s|$)/.test(line)) {
      key = line.slice(0, colon).trim();
      value = line.slice(colon + 1).trim();
    } else {
      const words = line.trim().split(/\s+/);
      if (words.length < 2) continue;
      key = words[words.length - 2];
      value = words[words.length - 1];
    }
    if (!key || value === undefined) continue;
    const n = Number(value);
    out[key] = value !== '' && Number.isFinite(n) ? n : value;
  }
  return out;
}

/** `virsh vcpucount`: maximum and current vCPUs of the config and (while running) live. */
export interface VcpuCounts {
  maximum: { config?: number; live?: number };
  current: { config?: number; live?: number };
}

/** Parses `virsh vcpucount` ("maximum config 2" lines). */
export function parseVcpuCount(text: string): VcpuCounts {
  const out: VcpuCounts = { maximum: {}, current: {} };
  for (const line of text.split('\n')) {
    const m = /^(maximum|current)\s+(config|live)\s+(\d+)$/.exec(line.trim());
    if (m?.[1] && m[2] && m[3])
      out[m[1] as 'maximum' | 'current'][m[2] as 'config' | 'live'] = Number(m[3]);
  }
  return out;
}
