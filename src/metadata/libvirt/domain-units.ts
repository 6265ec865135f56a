/**
 * Sizes and counts of a libvirt domain: scaled-integer units, `<memory>`/`<currentMemory>`,
 * `<vcpu>` and the `<cpu>` topology and model.
 */
import { MetadataError } from '../../errors.js';
import { attr, textOf } from '../../formats/xml.js';
import type { CpuTopology } from '../model.js';
import { child, type El, has, intAttr, textIn } from './domain-el.js';

const MAX_NUMBER_DIGITS = 64;

/** libvirt's scaled-integer units (virScaleInteger): case-insensitive, default KiB. */
function unitFactor(unit: string): bigint | undefined {
  const u = unit.toLowerCase();
  if (u === 'b' || u === 'bytes') return 1n;
  const m = /^([kmgtpe])(ib|b)?$/.exec(u);
  if (!m) return undefined;
  const power = BigInt('kmgtpe'.indexOf(m[1] as string) + 1);
  return m[2] === 'b' ? 1000n ** power : 1024n ** power;
}

/**
 * A `<memory unit=...>`-style element in bytes. A number too large for the model is returned as
 * is (possibly beyond 2^53): validateGuest refuses it, naming the field.
 */
function scaledBytes(element: El, what: string, file: string): number {
  const raw = (textOf(element) ?? '').trim();
  if (!/^\d+$/.test(raw)) {
    throw new MetadataError(file, `<${what}> "${raw.slice(0, 40)}" is not a whole number`);
  }
  if (raw.length > MAX_NUMBER_DIGITS) {
    throw new MetadataError(file, `<${what}> has ${raw.length} digits: absurdly large`);
  }
  const unit = attr(element, 'unit') ?? 'KiB';
  const factor = unitFactor(unit);
  if (factor === undefined) {
    throw new MetadataError(file, `<${what} unit="${unit}">: not a unit libvirt knows`);
  }
  return Number(BigInt(raw) * factor);
}

export function topologyOf(
  cpu: El | undefined,
  vcpus: number,
  notes: string[],
): CpuTopology | undefined {
  const topo = child(cpu, 'topology');
  if (!topo) return undefined;
  const sockets = intAttr(topo, 'sockets');
  const cores = intAttr(topo, 'cores');
  const threads = intAttr(topo, 'threads');
  if (sockets === undefined || cores === undefined || threads === undefined) {
    notes.push('<cpu><topology> without numeric sockets, cores and threads ignored');
    return undefined;
  }
  const dies = intAttr(topo, 'dies') ?? 1;
  const clusters = intAttr(topo, 'clusters') ?? 1;
  if (dies > 1) notes.push(`cpu topology: ${dies} dies per socket counted as sockets`);
  if (clusters > 1) notes.push(`cpu topology: ${clusters} clusters per die counted as cores`);
  const t: CpuTopology = { sockets: sockets * dies, cores: cores * clusters, threads };
  if (t.sockets * t.cores * t.threads !== vcpus) {
    notes.push(`cpu topology ${t.sockets}×${t.cores}×${t.threads} does not match ${vcpus} vcpus`);
  }
  return t;
}

export function cpuNote(cpu: El | undefined, notes: string[]): void {
  if (!cpu) return;
  const mode = attr(cpu, 'mode');
  const model = textIn(cpu, 'model');
  if (model) notes.push(`cpu model "${model}"${mode ? ` (mode ${mode})` : ''}`);
  else if (mode && mode !== 'custom') notes.push(`cpu mode ${mode}`);
}

export function vcpusOf(domain: El, file: string, notes: string[]): number | undefined {
  const raw = textIn(domain, 'vcpu');
  if (raw === undefined) return undefined;
  if (!/^[-+]?\d{1,12}$/.test(raw)) {
    throw new MetadataError(file, `<vcpu> "${raw.slice(0, 40)}" is not a whole number`);
  }
  const vcpus = Number(raw);
  const current = intAttr(child(domain, 'vcpu'), 'current');
  if (current !== undefined && current < vcpus) {
    notes.push(`${current} of ${vcpus} vcpus online: all ${vcpus} used`);
  }
  return vcpus;
}

export function memoryOf(domain: El, file: string, notes: string[]): number {
  const memory = has(domain, 'memory') ? child(domain, 'memory') : undefined;
  const current = has(domain, 'currentMemory') ? child(domain, 'currentMemory') : undefined;
  const max = memory && scaledBytes(memory, 'memory', file);
  const cur = current && scaledBytes(current, 'currentMemory', file);
  if (max === undefined && cur === undefined) {
    throw new MetadataError(file, 'no <memory> element');
  }
  if (max !== undefined && cur !== undefined && cur < max) {
    notes.push(`current memory ${cur} bytes is below the maximum ${max} bytes: maximum used`);
  }
  if (has(domain, 'maxMemory')) notes.push('memory hotplug (<maxMemory>) not carried over');
  return (max ?? cur) as number;
}
