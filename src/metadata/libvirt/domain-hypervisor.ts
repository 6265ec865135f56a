/**
 * Hypervisor, firmware and boot of a libvirt domain: the source hypervisor from `<domain type>`
 * and `<os><type>`, BIOS or UEFI, the libosinfo OS hint, Xen PV boot and direct kernel boot.
 */

import { asArray, attr, textOf } from '../../formats/xml.js';
import type { Firmware, SourceHypervisor, XenPvBoot } from '../model.js';
import { asEl, child, type El, textIn } from './domain-el.js';

const LIBOSINFO_NS = 'http://libosinfo.org/xmlns/libvirt/domain/1.0';

export function hypervisorOf(
  domainType: string,
  osType: string | undefined,
  notes: string[],
): SourceHypervisor {
  switch (domainType) {
    case 'kvm':
    case 'qemu':
      if (osType && osType !== 'hvm') notes.push(`os type "${osType}" on a ${domainType} domain`);
      return 'kvm';
    case 'xen':
      if (osType === 'hvm') return 'xen-fv';
      if (osType === 'xenpvh') notes.push('Xen PVH guest: read as a Xen PV guest');
      else if (osType && osType !== 'linux' && osType !== 'xen') {
        notes.push(`os type "${osType}" on a xen domain: read as a Xen PV guest`);
      }
      return 'xen-pv';
    case 'vmware':
      return 'vmware';
    default:
      notes.push(`domain type "${domainType}" is not a hypervisor this tool converts from`);
      return 'unknown';
  }
}

const UEFI_LOADER = /ovmf|edk2|aavmf|qemu_efi|\befi\b/i;

export function firmwareOf(
  os: El | undefined,
  hv: SourceHypervisor,
  arch: string | undefined,
): Firmware {
  const declared = attr(os, 'firmware');
  if (declared === 'efi') return 'uefi';
  if (declared === 'bios') return 'bios';
  const loader = child(os, 'loader');
  if (loader) {
    const path = textOf(loader)?.trim() ?? '';
    if (attr(loader, 'type') === 'pflash' || UEFI_LOADER.test(path)) return 'uefi';
    return 'bios';
  }
  if (hv === 'xen-pv' || hv === 'unknown') return 'unknown';
  const x86 = arch === undefined || /^(x86_64|i[3-6]86)$/.test(arch);
  return x86 ? 'bios' : 'unknown';
}

export function osHintOf(metadata: El | undefined): string | undefined {
  if (!metadata) return undefined;
  for (const [key, value] of Object.entries(metadata)) {
    if (key.startsWith('@_') || key === '#text') continue;
    for (const el of asArray(value).map(asEl)) {
      const prefix = key.includes(':') ? key.slice(0, key.indexOf(':')) : undefined;
      const ns = prefix ? attr(el, `xmlns:${prefix}`) : attr(el, 'xmlns');
      if (ns !== LIBOSINFO_NS && key !== 'libosinfo:libosinfo') continue;
      const osKey = prefix ? `${prefix}:os` : 'os';
      const id = attr(child(el, osKey), 'id');
      if (id) return id;
    }
  }
  return undefined;
}

export function xenPvOf(
  domain: El,
  os: El | undefined,
  console: string | undefined,
  notes: string[],
): XenPvBoot {
  const x: XenPvBoot = {
    bootloader: textIn(domain, 'bootloader'),
    kernel: textIn(os, 'kernel'),
    initrd: textIn(os, 'initrd'),
    cmdline: textIn(os, 'cmdline'),
    console,
  };
  const args = textIn(domain, 'bootloader_args');
  if (args) notes.push(`xen pv bootloader arguments "${args}"`);
  if (!x.bootloader && !x.kernel) notes.push('xen pv guest with neither bootloader nor kernel');
  return x;
}

export function directKernelNote(os: El | undefined, notes: string[]): void {
  const kernel = textIn(os, 'kernel');
  if (!kernel) return;
  const initrd = textIn(os, 'initrd');
  const cmdline = textIn(os, 'cmdline');
  notes.push(
    `direct kernel boot: kernel ${kernel}${initrd ? `, initrd ${initrd}` : ''}${cmdline ? `, cmdline "${cmdline}"` : ''}`,
  );
}
