/**
 * The exporters' extensions: VMware's `vmw:Config`/`vmw:ExtraConfig` settings and VirtualBox's
 * `vbox:Machine` section, and what they tell about the hypervisor, the firmware and the NICs.
 */

import { attr } from '../../formats/xml.js';
import type { Firmware, SourceHypervisor, SourceNic } from '../model.js';
import { normalizeMac } from '../validate.js';
import type { OvfDescriptor } from './ovf-envelope.js';
import { type HwItem, nicModel } from './ovf-items.js';
import { attrOf, type El, kid, kids } from './ovf-xml.js';

export interface Settings {
  values: Map<string, string>;
}

/** VirtualHardwareSection-level `vmw:Config` and `vmw:ExtraConfig` key/value pairs. */
export function vmwareSettings(section: El): Settings {
  const values = new Map<string, string>();
  for (const c of [...kids(section, 'Config'), ...kids(section, 'ExtraConfig')]) {
    const key = attrOf(c, 'key');
    if (key !== undefined) values.set(key, attr(c, 'value') ?? '');
  }
  return { values };
}

export function itemSetting(item: HwItem, key: string): string | undefined {
  const setting = kids(item.el, 'Config').find((c) => attrOf(c, 'key') === key);
  return setting === undefined ? undefined : attr(setting, 'value');
}

export function detectHypervisor(
  desc: OvfDescriptor,
  systemType: string | undefined,
  vbox: El | undefined,
  notes: string[],
): SourceHypervisor {
  const type = systemType ?? '';
  if (vbox || /^virtualbox/i.test(type)) {
    notes.push(`exported by VirtualBox (${systemType ?? 'vbox:Machine'})`);
    return 'unknown';
  }
  if (/\bvmx-\d+/i.test(type) || desc.vmwareNamespace) return 'vmware';
  if (/\bhvm-/i.test(type)) return 'xen-fv';
  if (/\bxen-/i.test(type)) return 'xen-pv';
  if (/\bkvm\b|qemu/i.test(type)) return 'kvm';
  notes.push(
    systemType === undefined
      ? 'no VirtualSystemType: hypervisor unknown'
      : `VirtualSystemType "${systemType}" not recognised: hypervisor unknown`,
  );
  return 'unknown';
}

export function detectFirmware(
  settings: Settings,
  vbox: El | undefined,
  hypervisor: SourceHypervisor,
  notes: string[],
): Firmware {
  const fw = settings.values.get('firmware');
  if (fw !== undefined) {
    if (fw.toLowerCase() === 'efi') return 'uefi';
    if (fw.toLowerCase() === 'bios') return 'bios';
    notes.push(`unknown firmware "${fw}"`);
    return 'unknown';
  }
  if (vbox) {
    const type = attrOf(kid(kid(vbox, 'Hardware'), 'Firmware'), 'type');
    if (type === undefined || /^bios$/i.test(type)) return 'bios';
    if (/^efi/i.test(type)) return 'uefi';
    notes.push(`unknown VirtualBox firmware "${type}"`);
    return 'unknown';
  }
  return hypervisor === 'vmware' ? 'bios' : 'unknown';
}

export const MAPPED_SETTINGS = new Set([
  'firmware',
  'bootOptions.efiSecureBootEnabled',
  'uefi.secureBoot.enabled',
  'uuid.bios',
  'nvram',
]);

/** VirtualBox keeps MACs (and a virtio NIC's model) only in its own `vbox:Machine` section. */
export function applyVirtualBoxAdapters(vbox: El, nics: SourceNic[], notes: string[]): void {
  const adapters = kids(kid(kid(vbox, 'Hardware'), 'Network'), 'Adapter')
    .filter((a) => attrOf(a, 'enabled') === 'true')
    .sort((a, b) => Number(attrOf(a, 'slot') ?? 0) - Number(attrOf(b, 'slot') ?? 0));
  if (adapters.length === 0) return;
  if (adapters.length !== nics.length) {
    notes.push(
      `vbox:Machine lists ${adapters.length} enabled adapters for ${nics.length} NICs: MACs not taken from it`,
    );
    return;
  }
  adapters.forEach((a, i) => {
    const nic = nics[i] as SourceNic;
    nic.mac ??= normalizeMac(attrOf(a, 'MACAddress'));
    const type = attrOf(a, 'type');
    if (nic.model === 'unknown' && type !== undefined)
      nic.model = nicModel(type, false) ?? 'unknown';
  });
}
