/**
 * A stand-in for the Converter (TOKENS.Converter) in tests of what happens AROUND a conversion
 * (import's placing, define, start, clean-up and crash recovery; batch's concurrency, state
 * file, restarts and report), where the real pipeline's libguestfs appliance would cost a minute
 * per item under TCG. It reads the source with the real metadata reader, copies each disk with
 * the real qemu-img layer into the output directory (temporary name, then renamed), and writes
 * the domain XML the KVM target would write; it changes nothing inside the guest, so it suits a
 * guest that boots on KVM hardware as it is (the tiny VMware guest, whose initramfs needs no
 * disk driver). The real conversion is tested in convert.test.ts and import.test.ts.
 *
 * `registerFastConverter(root)` swaps it in (main's `configure`, or a test's own root).
 */
import * as path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import type { ConvertEvent, ConvertRequest, ConvertResult } from '../../src/convert/pipeline.js';
import { targetLayout } from '../../src/convert/target.js';
import { TOKENS } from '../../src/di/tokens.js';
import { buildTargetDomainXml, cpuTopology } from '../../src/hvtarget/domain.js';
import type { Logger } from '../../src/log/logger.js';
import type { MetadataReader } from '../../src/metadata/reader.js';
import { guessKind, readerFor } from '../../src/metadata/registry.js';
import type { Node } from '../../src/node/node.js';
import { scratchName } from '../../src/node/scratch.js';
import { tempSibling } from '../../src/node/temp-name.js';
import type { CleanupStack } from '../../src/run/cleanup.js';
import type { QemuImg } from '../../src/storage/qemu-img.js';

export class FastConverter {
  constructor(
    private readonly node: Node,
    private readonly qemu: QemuImg,
    private readonly log: Logger,
    private readonly cleanup: CleanupStack,
    private readonly signal: AbortSignal,
    private readonly readers: MetadataReader[],
  ) {}

  async convert(
    req: ConvertRequest,
    onEvent: (e: ConvertEvent) => void = () => {},
  ): Promise<ConvertResult> {
    const stages: ConvertResult['stages'] = {};
    const stage = async <T>(s: keyof ConvertResult['stages'], fn: () => Promise<T>) => {
      onEvent({ type: 'stage', stage: s, state: 'start' });
      const t0 = performance.now();
      const r = await fn();
      stages[s] = Math.round(performance.now() - t0);
      onEvent({ type: 'stage', stage: s, state: 'end', ms: stages[s] });
      return r;
    };
    const kind = req.input ?? guessKind(req.source);
    const source = await stage('read-metadata', async () => {
      const dir = scratchName('/var/tmp/v2v-load-fast-');
      await this.node.mkdir(dir, { mode: 0o700 });
      try {
        return await readerFor(kind, this.readers).read(req.source, req.readerOptions ?? {}, {
          node: this.node,
          log: this.log,
          tmpDir: dir,
          signal: this.signal,
        });
      } finally {
        await this.node.remove(dir, { recursive: true });
      }
    });
    const layout = targetLayout(source, {
      outputDir: req.outputDir,
      outputFormat: req.outputFormat,
      virtio: true,
      networks: req.networks,
      name: req.name,
    });
    const handed: { dismiss(): void }[] = [];
    await stage('storage-finish', async () => {
      for (const d of layout.disks) {
        const tmp = tempSibling(d.output);
        const h = this.cleanup.defer(`remove ${tmp}`, () => this.node.remove(tmp));
        await this.qemu.allowing(path.dirname(d.source.path)).convert(
          { path: d.source.path, format: d.source.format as 'vmdk' },
          { path: tmp, format: d.outputFormat },
          {
            onProgress: (p) => onEvent({ type: 'progress', disk: d.output, percent: p.percent }),
          },
        );
        await this.node.rename(tmp, d.output, { noReplace: true });
        h.dismiss();
        handed.push(this.cleanup.defer(`remove ${d.output}`, () => this.node.remove(d.output)));
      }
    });
    const xml = buildTargetDomainXml({
      type: req.domainType === 'kvm' ? 'kvm' : 'qemu',
      name: layout.name,
      uuid: source.uuid,
      memoryKiB: Math.ceil(source.memoryBytes / 1024),
      vcpus: source.vcpus,
      topology: cpuTopology(source.vcpus, source.cpuTopology),
      arch: 'x86_64',
      machine: 'q35',
      clock: 'utc',
      hyperv: false,
      disks: layout.disks.map((d) => ({
        path: d.output,
        format: d.outputFormat,
        dev: d.xmlDev,
        bus: d.bus,
      })),
      nics: layout.nics.map((n) => ({
        kind: n.kind,
        source: n.network,
        mac: n.mac,
        model: n.model,
      })),
      video: 'virtio',
      rng: false,
      balloon: false,
      serial: { type: 'pty' },
      vnc: false,
      origin: {
        hypervisor: source.hypervisor,
        source: source.origin.source,
        converted: new Date().toISOString(),
      },
    });
    const xmlPath = path.join(req.outputDir, `${layout.name}.xml`);
    await stage('write-metadata', async () => {
      await this.node.writeFileAtomic(xmlPath, xml, { mode: 0o644 });
    });
    for (const h of handed) h.dismiss();
    return {
      name: layout.name,
      dryRun: false,
      source: { kind, path: source.origin.source, hypervisor: source.hypervisor },
      guest: {
        distro: 'unknown',
        version: '0.0',
        productName: 'not inspected (test stand-in converter)',
        kernels: [],
        initramfsTool: 'none',
        bootloader: 'unknown',
      },
      modules: { hvsource: undefined, guestos: 'none', hvtarget: 'none' },
      plan: [],
      planActions: [],
      warnings: [],
      interfaces: [],
      disks: layout.disks.map((d) => ({ path: d.output, format: d.outputFormat, dev: d.xmlDev })),
      xmlPath,
      xml,
      stages,
    };
  }
}

/** Makes TOKENS.Converter resolve to a {@link FastConverter} (last registration wins). */
export function registerFastConverter(root: DependencyContainer): void {
  root.register(TOKENS.Converter, {
    useFactory: (c) =>
      new FastConverter(
        c.resolve(TOKENS.Node),
        c.resolve(TOKENS.QemuImg),
        c.resolve(TOKENS.Logger),
        c.resolve(TOKENS.Cleanup),
        c.resolve(TOKENS.AbortSignal),
        c.resolveAll(TOKENS.MetadataReader),
      ),
  });
}
