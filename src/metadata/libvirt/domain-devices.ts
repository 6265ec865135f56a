/**
 * Other devices of a libvirt domain: video and sound, the Xen PV console, and a note for every
 * device that has no place in the model.
 */

import { asArray, attr } from '../../formats/xml.js';
import type { SourceHypervisor, SourceSound, SourceVideo, VideoModel } from '../model.js';
import { asEl, child, children, type El, intAttr, lookup } from './domain-el.js';

const VIDEO_MODELS: Record<string, VideoModel> = {
  vga: 'vga',
  cirrus: 'cirrus',
  vmvga: 'vmvga',
  qxl: 'qxl',
  virtio: 'virtio',
  xen: 'xen',
};

export function videoOf(devices: El | undefined, notes: string[]): SourceVideo | undefined {
  const videos = children(devices, 'video');
  videos.slice(1).forEach((v, i) => {
    notes.push(`extra video device ${i + 1} (${attr(child(v, 'model'), 'type') ?? '?'}) ignored`);
  });
  const first = videos[0];
  if (!first) return undefined;
  const m = child(first, 'model');
  const type = attr(m, 'type') ?? 'default';
  if (type === 'none') return undefined;
  const model = lookup(VIDEO_MODELS, type) ?? 'unknown';
  if (model === 'unknown') notes.push(`unknown video model "${type}"`);
  const vram = intAttr(m, 'vram');
  return { model, vramBytes: vram === undefined ? undefined : vram * 1024 };
}

export function soundOf(devices: El | undefined, notes: string[]): SourceSound | undefined {
  const sounds = children(devices, 'sound');
  sounds.slice(1).forEach((s) => {
    notes.push(`extra sound device "${attr(s, 'model') ?? '?'}" ignored`);
  });
  const first = sounds[0];
  if (!first) return undefined;
  return { model: attr(first, 'model') ?? 'unknown' };
}

/** Device kinds that are plumbing the target re-creates: dropped without a note. */
const PLUMBING = new Set(['emulator', 'controller', 'memballoon']);
/** Device kinds handled on their own. */
const HANDLED = new Set(['disk', 'interface', 'video', 'sound', 'console', 'serial', 'input']);
/** Attributes safe and useful to quote in a note (never passwords or paths). */
const DESCRIBE_ATTRS = ['type', 'model', 'mode', 'bus', 'device'];

function describe(kind: string, el: El): string {
  const attrs = DESCRIBE_ATTRS.map((a) => [a, attr(el, a)] as const)
    .filter(([, v]) => v !== undefined)
    .map(([a, v]) => ` ${a}="${v}"`)
    .join('');
  const model = attr(child(el, 'model'), 'type');
  const backend = child(el, 'backend');
  const via = attr(backend, 'type') ?? attr(backend, 'model');
  const target = attr(child(el, 'target'), 'name');
  const extra = [model && `model ${model}`, via && `backend ${via}`, target && `target ${target}`]
    .filter(Boolean)
    .join(', ');
  return `<${kind}${attrs}>${extra ? ` (${extra})` : ''}`;
}

export function otherDeviceNotes(
  devices: El | undefined,
  hv: SourceHypervisor,
  notes: string[],
): string | undefined {
  let console: string | undefined;
  if (!devices) return undefined;
  for (const [kind, value] of Object.entries(devices)) {
    if (kind.startsWith('@_') || kind === '#text' || PLUMBING.has(kind)) continue;
    for (const el of asArray(value).map(asEl)) {
      if (kind === 'console' || kind === 'serial') {
        const target = child(el, 'target');
        const targetType = attr(target, 'type');
        if (kind === 'console' && hv === 'xen-pv' && (targetType ?? 'xen') === 'xen') {
          console ??= `hvc${intAttr(target, 'port') ?? 0}`;
          continue;
        }
        if ((attr(el, 'type') ?? 'pty') === 'pty') continue;
      } else if (kind === 'input') {
        if (/^(mouse|tablet|keyboard)$/.test(attr(el, 'type') ?? '')) continue;
      } else if (kind === 'audio') {
        // libvirt adds <audio type='none'/> to every QEMU domain: no backend, nothing lost
        if (attr(el, 'type') === 'none') continue;
      } else if (HANDLED.has(kind)) {
        continue;
      }
      notes.push(`unmapped device ${describe(kind, el)}`);
    }
  }
  return console;
}
