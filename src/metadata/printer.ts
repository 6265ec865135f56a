/**
 * The printers of the neutral model: the text of `v2v-load inspect` (in the spirit of
 * virt-v2v's --print-source) and its JSON. Golden-file tests diff both.
 */
import type { SourceDisk, SourceGuest } from './model.js';

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1 && v % 1024 === 0) {
    v /= 1024;
    i++;
  }
  return `${v} ${units[i]}`;
}

function diskLine(d: SourceDisk, i: number): string[] {
  const parts = [`${i}: ${d.path} (${d.format})`];
  parts.push(`bus ${d.bus}`, `controller ${d.controller}`, `slot ${d.slot}`);
  if (d.bootOrder !== undefined) parts.push(`boot ${d.bootOrder}`);
  if (d.readOnly) parts.push('read-only');
  if (d.capacityBytes !== undefined) parts.push(`capacity ${bytes(d.capacityBytes)}`);
  if (d.compression) parts.push(`compressed ${d.compression}`);
  const lines = [`    ${parts.join(', ')}`];
  for (const b of d.backingChain) lines.push(`       backed by ${b}`);
  if (d.inArchive) {
    const at = d.inArchive.offset === undefined ? '' : ` at offset ${d.inArchive.offset}`;
    lines.push(
      `       in archive ${d.inArchive.archive}: ${d.inArchive.member}${at}, ${d.inArchive.size} bytes`,
    );
  }
  return lines;
}

/** The text form: stable, one fact a line, for people and golden files. */
export function formatGuest(g: SourceGuest): string {
  const lines: string[] = [];
  const field = (label: string, value: string | undefined) => {
    if (value !== undefined) lines.push(`${label.padStart(14)}: ${value}`);
  };
  field('source', `${g.origin.kind} ${g.origin.source}`);
  field('name', g.name);
  field('hypervisor', g.hypervisor);
  field('firmware', g.firmware);
  field('memory', `${bytes(g.memoryBytes)} (${g.memoryBytes} bytes)`);
  field('vcpus', String(g.vcpus));
  if (g.cpuTopology) {
    const t = g.cpuTopology;
    field(
      'cpu topology',
      `${t.sockets} sockets, ${t.cores} cores/socket, ${t.threads} threads/core`,
    );
  }
  field('os hint', g.osHint);
  field('uuid', g.uuid);
  if (g.xenPv) {
    const x = g.xenPv;
    field(
      'xen pv boot',
      [
        x.bootloader && `bootloader ${x.bootloader}`,
        x.kernel && `kernel ${x.kernel}`,
        x.initrd && `initrd ${x.initrd}`,
        x.cmdline && `cmdline "${x.cmdline}"`,
        x.console && `console ${x.console}`,
      ]
        .filter(Boolean)
        .join(', '),
    );
  }
  lines.push(`disks (${g.disks.length}):`);
  g.disks.forEach((d, i) => {
    lines.push(...diskLine(d, i));
  });
  lines.push(`cd-roms (${g.cdroms.length}):`);
  for (const c of g.cdroms) lines.push(`    ${c.bus} ${c.slot}: ${c.path ?? '(empty)'}`);
  lines.push(`nics (${g.nics.length}):`);
  for (const n of g.nics) {
    const net = n.network === undefined ? n.networkKind : `${n.networkKind} "${n.network}"`;
    lines.push(`    ${n.model} ${n.mac ?? '(no mac)'} on ${net}`);
  }
  field(
    'video',
    g.video
      ? `${g.video.model}${g.video.vramBytes ? `, ${bytes(g.video.vramBytes)} vram` : ''}`
      : 'none',
  );
  field('sound', g.sound?.model ?? 'none');
  if (g.notes.length) {
    lines.push(`notes (${g.notes.length}):`);
    for (const n of g.notes) lines.push(`    ${n}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The JSON form: the model itself, keys in a stable order, undefined fields left out. */
export function guestToJson(g: SourceGuest): string {
  return `${JSON.stringify(g, null, 2)}\n`;
}
