/**
 * Network interfaces of a libvirt domain: MAC, NIC model and the network, bridge or port group
 * each is attached to.
 */

import { attr } from '../../formats/xml.js';
import type { NetworkKind, NicModel, SourceHypervisor, SourceNic } from '../model.js';
import { normalizeMac } from '../validate.js';
import { child, type El, lookup } from './domain-el.js';

const NIC_MODELS: Record<string, NicModel> = {
  virtio: 'virtio',
  'virtio-transitional': 'virtio',
  'virtio-non-transitional': 'virtio',
  e1000: 'e1000',
  'e1000-82545em': 'e1000',
  e1000e: 'e1000e',
  rtl8139: 'rtl8139',
  vmxnet3: 'vmxnet3',
  vmxnet2: 'vmxnet2',
  vmxnet: 'vmxnet',
  vlance: 'vlance',
  pcnet: 'pcnet',
  netfront: 'xen-netfront',
};

export function nicOf(iface: El, i: number, hv: SourceHypervisor, notes: string[]): SourceNic {
  const rawMac = attr(child(iface, 'mac'), 'address');
  const mac = normalizeMac(rawMac);
  const label = `interface ${mac ?? `#${i}`}`;
  if (rawMac && !mac) notes.push(`${label}: MAC "${rawMac}" is not a MAC address`);
  const type = attr(iface, 'type') ?? '?';
  const src = child(iface, 'source');
  let network: string | undefined;
  let networkKind: NetworkKind;
  switch (type) {
    case 'network':
      network = attr(src, 'network');
      networkKind = 'network';
      if (attr(src, 'portgroup')) notes.push(`${label}: port group "${attr(src, 'portgroup')}"`);
      break;
    case 'bridge':
      network = attr(src, 'bridge');
      networkKind = hv === 'vmware' ? 'portgroup' : 'bridge';
      break;
    case 'vds':
      network = attr(src, 'portgroupid');
      networkKind = 'portgroup';
      notes.push(`${label}: VMware distributed switch ${attr(src, 'switchid') ?? '?'}`);
      break;
    case 'user':
      networkKind = 'user';
      break;
    case 'direct':
      network = attr(src, 'dev');
      networkKind = 'unknown';
      notes.push(
        `${label}: type "direct" (macvtap on ${network ?? '?'}, mode ${attr(src, 'mode') ?? 'vepa'})`,
      );
      break;
    default:
      networkKind = 'unknown';
      notes.push(`${label}: interface type "${type}" not mapped`);
  }
  const modelType = attr(child(iface, 'model'), 'type');
  let model: NicModel;
  if (modelType) {
    model = lookup(NIC_MODELS, modelType) ?? 'unknown';
    if (model === 'unknown') notes.push(`${label}: unknown NIC model "${modelType}"`);
  } else if (hv === 'xen-pv') {
    model = 'xen-netfront';
  } else if (hv === 'xen-fv') {
    model = 'rtl8139';
    notes.push(`${label}: no <model>: Xen HVM's emulated default rtl8139 assumed`);
  } else {
    model = 'unknown';
    notes.push(`${label}: no <model>, NIC model unknown`);
  }
  const order = attr(child(iface, 'boot'), 'order');
  if (order) notes.push(`${label}: boot order ${order} (network boot)`);
  return { mac, model, network, networkKind };
}
