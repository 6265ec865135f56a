/**
 * The platform of a .vmx: memory, vCPUs and CPU topology, firmware, the SVGA adapter and the
 * sound device.
 */
import type { CpuTopology, SourceGuest, SourceSound, SourceVideo } from '../model.js';
import { printable, type VmxFile } from './parse-vmx.js';

/** VMware's memory when `memsize` is absent, in MiB. */
const DEFAULT_MEMSIZE_MIB = 32;

const SOUND_MODELS = new Set(['hdaudio', 'es1371', 'sb16']);

/** memsize, numvcpus and cpuid.coresPerSocket. */
export function cpuAndMemory(
  vmx: VmxFile,
  notes: Set<string>,
): { memoryBytes: number; vcpus: number; cpuTopology?: CpuTopology } {
  let memMib = vmx.uint('memsize');
  if (memMib === undefined) {
    memMib = DEFAULT_MEMSIZE_MIB;
    notes.add(`no memsize: VMware's default of ${DEFAULT_MEMSIZE_MIB} MiB is used`);
  }
  const vcpusEntry = vmx.entry('numvcpus');
  const vcpus = vmx.uint('numvcpus') ?? 1;
  if (vcpusEntry && vcpus < 1) throw vmx.error(vcpusEntry, 'expected at least 1 vCPU');
  const coresEntry = vmx.entry('cpuid.coresPerSocket');
  const cores = vmx.uint('cpuid.coresPerSocket');
  if (!coresEntry || cores === undefined) return { memoryBytes: memMib * 1024 * 1024, vcpus };
  if (cores < 1) throw vmx.error(coresEntry, 'expected at least 1 core per socket');
  if (vcpus % cores !== 0) {
    throw vmx.error(coresEntry, `does not divide numvcpus (${vcpus}) into whole sockets`);
  }
  return {
    memoryBytes: memMib * 1024 * 1024,
    vcpus,
    cpuTopology: { sockets: vcpus / cores, cores, threads: 1 },
  };
}

/** The SVGA adapter every VMware VM has, unless svga.present says otherwise. */
export function readVideo(vmx: VmxFile): SourceVideo | undefined {
  if (vmx.bool('svga.present') === false) return undefined;
  const vram = vmx.uint('svga.vramSize');
  return vram === undefined ? { model: 'vmvga' } : { model: 'vmvga', vramBytes: vram };
}

/** sound.present and sound.virtualDev. */
export function readSound(vmx: VmxFile, notes: Set<string>): SourceSound | undefined {
  const present = vmx.bool('sound.present');
  if (present === false) return undefined;
  if (present === undefined && !vmx.keys().some((k) => k.startsWith('sound.'))) return undefined;
  const dev = vmx.str('sound.virtualDev')?.trim().toLowerCase();
  if (dev === undefined || dev === '') {
    notes.add("sound.virtualDev absent: es1371 assumed (VMware's default)");
    return { model: 'es1371' };
  }
  if (!SOUND_MODELS.has(dev)) notes.add(`unknown sound device "${printable(dev)}"`);
  return { model: dev };
}

/** firmware = "efi" is UEFI; absent is BIOS. */
export function readFirmware(vmx: VmxFile, notes: Set<string>): SourceGuest['firmware'] {
  const fw = vmx.str('firmware')?.trim().toLowerCase();
  if (fw === undefined || fw === 'bios') return 'bios';
  if (fw === 'efi') return 'uefi';
  notes.add(`unknown firmware "${printable(fw)}"`);
  return 'unknown';
}
