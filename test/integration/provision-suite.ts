/**
 * The VCL provisioner through `v2v-load vcl SUB --data FILE` against the real libvirtd
 * (qemu:///system, TCG), on the local node (provision-local.test.ts) and the SSH node
 * (provision-ssh.test.ts). The master is the tiny bootable disk (test/harness/tiny-disk.ts:
 * SYSLINUX + the host kernel + a tiny initrd that prints markers on ttyS0 and powers off on
 * the ACPI button). Few guests boot; the rest loads with postLoad.wait=false. Every object is
 * named v2vl11<k>-...
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { DependencyContainer } from 'tsyringe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { TOKENS } from '../../src/di/tokens.js';
import { isComputerDomain } from '../../src/provisioning/naming.js';
import type { LoadStep, ProvisionerHooks } from '../../src/provisioning/provisioner.js';
import { LOAD_STEPS } from '../../src/provisioning/provisioner.js';
import type { ReservationInput } from '../../src/provisioning/reservation.js';
import { MasterCache } from '../../src/storage/master-cache.js';
import type { QemuImg } from '../../src/storage/qemu-img.js';
import { buildTinyDisk } from '../harness/tiny-disk.js';
import { TINY_READY_MARKER } from '../harness/tiny-guest.js';

// biome-ignore lint/suspicious/noExplicitAny: documents edited field by field to make them wrong
type Loose = any;

const exec = promisify(execFile);
const URI = 'qemu:///system';
const BOOT_S = 120;

/** How the documents reach the VM host. */
export interface VmhostAccess {
  node: string;
  identity: string | null;
  knownHosts: string | null;
}

export interface VclOut {
  status: number;
  json: {
    ok: boolean;
    result: Loose;
    error: { code: string; message: string; hint?: string } | null;
  };
  stderr: string;
}

/** Runs `v2v-load vcl SUB --data FILE` in this process. */
export async function vcl(
  dir: string,
  sub: string,
  doc: unknown,
  configure?: (root: DependencyContainer) => void,
): Promise<VclOut> {
  const file = path.join(dir, `doc-${Math.random().toString(36).slice(2)}.json`);
  await fs.writeFile(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
  let stdout = '';
  let stderr = '';
  const status = await main(
    ['vcl', sub, '--data', file],
    { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    configure ? { configure } : {},
  );
  await fs.rm(file, { force: true });
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return { status, json: JSON.parse(lines[0] ?? '{}'), stderr };
}

async function virsh(...args: string[]): Promise<string> {
  return (await exec('virsh', ['-c', URI, ...args])).stdout;
}

async function domainsOf(computer: string): Promise<string[]> {
  const out = await virsh('list', '--all', '--name');
  return out.split('\n').filter((n) => n && isComputerDomain(n, computer));
}

export function provisionSuite(kind: 'local' | 'ssh', access: () => VmhostAccess): void {
  const k = kind === 'local' ? 'l' : 's';
  const prefix = `v2vl11${k}`;
  const net = `${prefix}-net`;
  const image = `${prefix}linux-TinyDisk${k === 'l' ? 11 : 12}-v1`;
  let base: string;
  let repo: string;
  let store: string;
  let vms: string;

  const doc = (computer: number, over: Partial<ReservationInput> = {}): ReservationInput => ({
    reservation: { id: 9000 + computer, requestId: 8000 + computer },
    computer: {
      id: computer,
      shortName: `${prefix}-${computer}`,
      eth0Mac: `52:54:00:11:0${k === 'l' ? 1 : 2}:${computer.toString(16).padStart(2, '0')}`,
      eth1Mac: null,
    },
    image: {
      id: k === 'l' ? 11 : 12,
      name: image,
      prettyName: 'Tiny disk (SYSLINUX)',
      revision: 1,
      osType: 'linux',
      minRamMiB: 256,
      minCpus: 1,
      diskFormat: 'qcow2',
    },
    vmhost: {
      ...access(),
      libvirtUri: URI,
      datastorePath: store,
      vmPath: vms,
      repositoryPath: repo,
      virtualSwitch0: net,
      virtualSwitch1: null,
      domainType: 'qemu',
    },
    postLoad: { pattern: TINY_READY_MARKER, timeoutSeconds: BOOT_S, wait: true },
    ...over,
  });

  /** Everything a computer may leave: domains, files, the XML, the lock. */
  async function leftovers(computer: string): Promise<string[]> {
    const left = (await domainsOf(computer)).map((d) => `domain ${d}`);
    for (const f of await fs.readdir(vms)) {
      if (f.startsWith(`${computer}_`) || f.startsWith(`.${computer}.`)) left.push(`file ${f}`);
    }
    for (const f of await fs.readdir('/tmp/vcl').catch(() => [])) {
      if (f.startsWith(`${computer}_`)) left.push(`xml ${f}`);
    }
    return left;
  }

  async function cleanAll(): Promise<void> {
    const out = await virsh('list', '--all', '--name').catch(() => '');
    for (const n of out.split('\n').filter((x) => x.startsWith(`${prefix}-`))) {
      await exec('virsh', ['-c', URI, 'destroy', n]).catch(() => {});
      await exec('virsh', ['-c', URI, 'undefine', n, '--snapshots-metadata']).catch(() => {});
    }
    for (const f of await fs.readdir('/tmp/vcl').catch(() => [])) {
      if (f.startsWith(`${prefix}-`)) await fs.rm(path.join('/tmp/vcl', f), { force: true });
    }
  }

  describe(`VCL provisioner on the ${kind} node`, () => {
    beforeAll(async () => {
      const disk = await buildTinyDisk();
      await cleanAll();
      base = await fs.mkdtemp(`/var/tmp/${prefix}-`);
      await fs.chmod(base, 0o755);
      repo = path.join(base, 'repository');
      store = path.join(base, 'datastore');
      vms = path.join(base, 'vms');
      for (const d of [repo, store, vms, path.join(repo, image)])
        await fs.mkdir(d, { mode: 0o755 });
      await fs.copyFile(disk, path.join(repo, image, `${image}.qcow2`));
      await exec('virsh', ['-c', URI, 'net-destroy', net]).catch(() => {});
      const netXml = path.join(base, 'net.xml');
      await fs.writeFile(
        netXml,
        `<network><name>${net}</name><bridge name='${prefix}b0' stp='off'/></network>`,
      );
      await virsh('net-create', netXml);
    });

    afterAll(async () => {
      await cleanAll();
      await exec('virsh', ['-c', URI, 'net-destroy', net]).catch(() => {});
      if (base) await fs.rm(base, { recursive: true, force: true });
    });

    it('refuses bad documents with the field named, exit 1, before reaching the node', async () => {
      const d = doc(1) as Loose;
      delete d.vmhost.datastorePath;
      d.image.minCpus = 'two';
      let r = await vcl(base, 'load', d);
      expect(r.status).toBe(1);
      expect(r.json.ok).toBe(false);
      expect(r.json.error?.code).toBe('RESERVATION_INVALID');
      expect(r.json.error?.message).toContain('vmhost.datastorePath: Invalid input');
      expect(r.json.error?.message).toContain('image.minCpus: Invalid input: expected number');
      r = await vcl(base, 'load', '{"reservation": ');
      expect(r.json.error?.message).toMatch(/doc-\w+\.json: not JSON/);
      r = await vcl(base, 'reboot_everything', doc(1));
      expect(r.status).toBe(1);
      expect(r.json.error?.message).toBe('unknown subroutine "reboot_everything"');
      r = await vcl(base, 'delete_domain', doc(1));
      expect(r.json.error?.message).toBe('delete_domain: args.domainName: required');
      expect(await leftovers(`${prefix}-1`)).toEqual([]);
    });

    it('initialize picks the QEMU-TCG driver when vmhost.domainType is qemu; names and paths', async () => {
      const r = await vcl(base, 'initialize', doc(1));
      expect(r.json).toMatchObject({
        ok: true,
        result: {
          driver: 'QEMU-TCG',
          domainType: 'qemu',
          refused: { KVM: 'vmhost.domainType is qemu' },
        },
      });
      expect((await vcl(base, 'get_driver_name', doc(1))).json.result).toBe('QEMU-TCG');
      // domainType null: the drivers examine the node; KVM does not work on these machines
      // (no /dev/kvm, or a kernel booted under KVM hangs), so QEMU-TCG serves it
      const auto = doc(1);
      auto.vmhost.domainType = null;
      const a = await vcl(base, 'initialize', auto);
      expect(a.json.result).toMatchObject({ driver: 'QEMU-TCG', domainType: 'qemu' });
      expect(a.json.result.refused.KVM).toMatch(/^(no \/dev\/kvm|a kernel booted under KVM .+)$/);
      expect((await vcl(base, 'get_domain_name', doc(1))).json.result).toBe(
        `${prefix}-1_TinydiskSYSLINUX_${k === 'l' ? 11 : 12}-v1`,
      );
      expect((await vcl(base, 'get_copy_on_write_file_path', doc(1))).json.result).toBe(
        path.join(vms, `${prefix}-1_${k === 'l' ? 11 : 12}-v1.qcow2`),
      );
      expect((await vcl(base, 'get_master_image_file_path', doc(1))).json.result).toBe(
        path.join(store, `${image}.qcow2`),
      );
      expect((await vcl(base, 'get_domain_xml_file_path', doc(1))).json.result).toBe(
        `/tmp/vcl/${prefix}-1_${k === 'l' ? 11 : 12}-v1.xml`,
      );
    });

    it('does_image_exist / sizes / repository paths before the master is in the datastore', async () => {
      const r = await vcl(base, 'does_image_exist', doc(1));
      expect(r.json.result).toEqual({
        exists: true,
        where: 'repository',
        disks: 1,
        files: [path.join(repo, image, `${image}.qcow2`)],
      });
      const bytes = (await vcl(base, 'get_image_size_bytes', doc(1))).json.result;
      const st = await fs.stat(path.join(repo, image, `${image}.qcow2`));
      expect(bytes).toBe(st.blocks * 512);
      expect((await vcl(base, 'get_image_size', doc(1))).json.result).toBe(
        Math.ceil(bytes / 1048576),
      );
      expect((await vcl(base, 'find_repository_image_file_paths', doc(1))).json.result).toEqual([
        path.join(repo, image, `${image}.qcow2`),
      ]);
      const missing = { ...doc(1), args: { imageName: 'nosuch-image-v1' } };
      expect((await vcl(base, 'does_image_exist', missing)).json.result).toEqual({
        exists: false,
        disks: 0,
        files: [],
      });
      const size = await vcl(base, 'get_image_size', missing);
      expect(size.json.error?.message).toContain('image nosuch-image-v1 is neither in');
    });

    it('load: master fetched, COW, defined, started, READY once the console shows the marker', async () => {
      const r = await vcl(base, 'load', doc(1));
      expect(r.json.error).toBeNull();
      const res = r.json.result;
      expect(res).toMatchObject({ driver: 'QEMU-TCG', domainType: 'qemu', masterCopied: true });
      expect(res.postLoad.waited).toBe(true);
      expect(res.nodeCommands).toBeGreaterThan(0);
      expect(await domainsOf(`${prefix}-1`)).toEqual([res.domain]);
      expect((await fs.readFile(res.consoleLog, 'utf8')).includes(TINY_READY_MARKER)).toBe(true);
      const info = JSON.parse(
        (await exec('qemu-img', ['info', '--output=json', '-U', res.cow])).stdout,
      );
      expect(info['backing-filename']).toBe(path.join(store, `${image}.qcow2`));
      expect((await vcl(base, 'node_status', doc(1))).json.result).toMatchObject({
        status: 'READY',
        domain: res.domain,
        state: 'running',
        image,
        revision: 1,
        postLoadRan: true,
      });
      expect((await vcl(base, 'power_status', doc(1))).json.result).toBe('on');
      const xml = await virsh('dumpxml', res.domain);
      expect(xml).toContain("type='qemu'");
      expect(xml).toContain(`<mac address='52:54:00:11:0${k === 'l' ? 1 : 2}:01'/>`);
      expect(xml).toContain("listen='127.0.0.1'");
      // a node_status for another revision of the image asks for a reload
      const other = doc(1);
      other.image.revision = 2;
      other.image.name = `${prefix}linux-TinyDisk-v2`;
      expect((await vcl(base, 'node_status', other)).json.result).toMatchObject({
        status: 'RELOAD',
      });
    });

    it('domain helpers: get_domain_info, domain_exists, get_domain_xml, generate_domain_xml', async () => {
      const name = (await vcl(base, 'get_domain_name', doc(1))).json.result;
      const info = (await vcl(base, 'get_domain_info', doc(1))).json.result;
      expect(info[name]).toMatchObject({ state: 'running' });
      const withName = { ...doc(1), args: { domainName: name } };
      expect((await vcl(base, 'domain_exists', withName)).json.result).toBe(true);
      expect(
        (await vcl(base, 'domain_exists', { ...doc(1), args: { domainName: 'nope' } })).json.result,
      ).toBe(false);
      expect((await vcl(base, 'get_domain_xml', withName)).json.result).toContain(
        `<name>${name}</name>`,
      );
      const gen = (await vcl(base, 'generate_domain_xml', doc(1))).json.result;
      expect(gen).toContain(`<name>${name}</name>`);
      expect(gen).toContain('<v2vload:imageName>');
    });

    it('snapshots: create_snapshot, get_snapshot_info, delete_snapshot', async () => {
      const d = { ...doc(1), args: { snapshotName: 'before-class', description: 'VCL snapshot' } };
      const made = await vcl(base, 'create_snapshot', d);
      expect(made.json.error).toBeNull();
      expect(made.json.result).toMatchObject({ name: 'before-class', description: 'VCL snapshot' });
      const info = (await vcl(base, 'get_snapshot_info', doc(1))).json.result;
      expect(Object.keys(info)).toEqual(['before-class']);
      expect(info['before-class'].state).toBe('running');
      expect((await vcl(base, 'delete_snapshot', d)).json.result).toBe(true);
      expect((await vcl(base, 'get_snapshot_info', doc(1))).json.result).toEqual({});
    });

    it('power_off, power_on, power_reset; node_status follows', async () => {
      expect((await vcl(base, 'power_off', doc(1))).json.result).toBe(true);
      expect((await vcl(base, 'power_status', doc(1))).json.result).toBe('off');
      expect((await vcl(base, 'node_status', doc(1))).json.result).toMatchObject({
        status: 'RELOAD',
        state: 'shut off',
      });
      expect((await vcl(base, 'power_off', doc(1))).json.result).toBe(true); // already off
      expect((await vcl(base, 'power_on', doc(1))).json.result).toBe(true);
      expect((await vcl(base, 'power_status', doc(1))).json.result).toBe('on');
      expect((await vcl(base, 'power_reset', doc(1))).json.result).toBe(true);
      expect((await vcl(base, 'power_status', doc(1))).json.result).toBe('on');
      const name = (await vcl(base, 'get_domain_name', doc(1))).json.result;
      await virsh('suspend', name);
      expect((await vcl(base, 'power_status', doc(1))).json.result).toBe('suspended');
      expect((await vcl(base, 'power_on', doc(1))).json.result).toBe(true);
      expect((await vcl(base, 'power_status', doc(1))).json.result).toBe('on');
    });

    it('reload replaces the domain; a second load of the same computer at once waits or fails clearly', async () => {
      const before = (await virsh('domuuid', (await domainsOf(`${prefix}-1`))[0] ?? '')).trim();
      const quick = doc(1, {
        postLoad: { pattern: TINY_READY_MARKER, timeoutSeconds: BOOT_S, wait: false },
      });
      const second = { ...quick, args: { lockWaitSeconds: 0 } };
      const [a, b] = await Promise.all([vcl(base, 'load', quick), vcl(base, 'load', second)]);
      const outs = [a, b];
      const ok = outs.filter((o) => o.json.ok);
      expect(ok.length).toBeGreaterThanOrEqual(1);
      for (const o of outs.filter((x) => !x.json.ok)) {
        expect(o.json.error?.code).toBe('LOCKED');
        expect(o.json.error?.message).toMatch(
          new RegExp(
            `load of ${prefix}-1: .*\\.${prefix}-1\\.load\\.lock on \\S+ is held by load of ${prefix}-1 \\(pid \\d+`,
          ),
        );
      }
      const now = await domainsOf(`${prefix}-1`);
      expect(now).toHaveLength(1);
      expect((await virsh('domuuid', now[0] ?? '')).trim()).not.toBe(before);
      expect((await fs.readdir(vms)).filter((f) => f.includes('.load.lock'))).toEqual([]);
    });

    if (kind === 'local') {
      it('capture: graceful shutdown, flattened master + XML in datastore and repository; it loads and boots', async () => {
        const captured = `${prefix}linux-TinyCaptured13-v1`;
        const cap = doc(1);
        cap.image = { ...cap.image, id: 13, name: captured, prettyName: 'Tiny captured' };
        cap.args = { shutdownTimeoutSeconds: 60, compat: '0.10' };
        // the load before was not waited for: the guest must listen for ACPI first
        const log = (await fs.readdir(vms)).find(
          (f) => f.startsWith(`${prefix}-1_`) && f.endsWith('.console.log'),
        );
        for (let i = 0; i < BOOT_S * 2; i++) {
          if (
            (await fs.readFile(path.join(vms, log ?? ''), 'utf8').catch(() => '')).includes(
              TINY_READY_MARKER,
            )
          )
            break;
          await new Promise((r) => setTimeout(r, 500));
        }
        const r = await vcl(base, 'capture', cap);
        expect(r.json.error).toBeNull();
        expect(r.json.result).toMatchObject({
          image: captured,
          master: path.join(store, `${captured}.qcow2`),
          xml: path.join(store, `${captured}.xml`),
          repository: {
            image: path.join(repo, captured, `${captured}.qcow2`),
            xml: path.join(repo, captured, `${captured}.xml`),
          },
          shutdown: 'graceful',
        });
        const info = JSON.parse(
          (await exec('qemu-img', ['info', '--output=json', path.join(store, `${captured}.qcow2`)]))
            .stdout,
        );
        expect(info['backing-filename']).toBeUndefined();
        const rinfo = JSON.parse(
          (
            await exec('qemu-img', [
              'info',
              '--output=json',
              path.join(repo, captured, `${captured}.qcow2`),
            ])
          ).stdout,
        );
        expect(rinfo['format-specific'].data.compat).toBe('0.10');
        expect(await fs.readFile(path.join(repo, captured, `${captured}.xml`), 'utf8')).toContain(
          '<domain',
        );
        // capturing again into the same name is refused, nothing overwritten
        const again = await vcl(base, 'capture', cap);
        expect(again.json.error?.message).toContain('exists already; not overwritten');
        // the new master loads on another computer and boots
        const load2 = doc(2);
        load2.image = { ...cap.image };
        delete (load2 as Loose).args;
        const l = await vcl(base, 'load', load2);
        expect(l.json.error).toBeNull();
        expect(l.json.result.masterCopied).toBe(false);
        expect((await vcl(base, 'node_status', load2)).json.result.status).toBe('READY');
        expect(
          (await vcl(base, 'post_maintenance_action', load2)).json.result.deleted,
        ).toHaveLength(1);
        expect(await leftovers(`${prefix}-2`)).toEqual([]);
      });

      it('a failure injected after each load step leaves nothing behind', async () => {
        const quick = doc(3, {
          postLoad: { pattern: TINY_READY_MARKER, timeoutSeconds: BOOT_S, wait: false },
        });
        for (const step of LOAD_STEPS) {
          const hooks: ProvisionerHooks = {
            afterLoadStep: (s: LoadStep) => {
              if (s === step) throw new Error(`injected failure after ${s}`);
            },
          };
          const r = await vcl(base, 'load', quick, (root) =>
            root.register(TOKENS.ProvisionerHooks, { useValue: hooks }),
          );
          expect(r.status, step).toBe(1);
          expect(r.json.error?.message, step).toBe(`injected failure after ${step}`);
          expect(await leftovers(`${prefix}-3`), step).toEqual([]);
        }
        // and a real failure: the guest never shows the pattern in time
        const never = doc(3, {
          postLoad: { pattern: 'NEVER-PRINTED', timeoutSeconds: 2, wait: true },
        });
        const r = await vcl(base, 'load', never);
        expect(r.json.error?.code).toBe('POST_LOAD_TIMEOUT');
        expect(await leftovers(`${prefix}-3`)).toEqual([]);
      });

      it('20 computers loaded at once from one missing master: one copy', async () => {
        const fresh = `${prefix}linux-TinyTwenty14-v1`;
        await fs.mkdir(path.join(repo, fresh), { mode: 0o755 });
        await fs.copyFile(
          path.join(repo, image, `${image}.qcow2`),
          path.join(repo, fresh, `${fresh}.qcow2`),
        );
        let copies = 0;
        // each load is a run of its own, with its own master cache (as 20 processes would be):
        // only the lock on the node makes them share one copy
        const configure = (root: DependencyContainer) =>
          root.register(TOKENS.MasterCacheFor, {
            useValue: (q: QemuImg) =>
              new MasterCache(q, { onCopy: () => copies++, pollMs: 50, maxPollMs: 500 }),
          });
        const docs = Array.from({ length: 20 }, (_, i) => {
          const d = doc(20 + i, {
            postLoad: { pattern: TINY_READY_MARKER, timeoutSeconds: BOOT_S, wait: false },
          });
          d.image = { ...d.image, id: 14, name: fresh, minRamMiB: 64 };
          return d;
        });
        const outs = await Promise.all(docs.map((d) => vcl(base, 'load', d, configure)));
        for (const o of outs) expect(o.json.error).toBeNull();
        expect(copies).toBe(1);
        expect(outs.filter((o) => o.json.result.masterCopied)).not.toHaveLength(0);
        expect(
          (await fs.readdir(store)).filter((f) => f.startsWith(fresh) || f.startsWith(`.${fresh}`)),
        ).toEqual([`${fresh}.qcow2`]);
        await Promise.all(docs.map((d) => vcl(base, 'post_maintenance_action', d)));
        for (const d of docs) expect(await leftovers(d.computer.shortName)).toEqual([]);
      });
    }

    it("post_maintenance_action removes the computer's domains and files", async () => {
      const r = await vcl(base, 'post_maintenance_action', doc(1));
      expect(r.json.error).toBeNull();
      expect(await leftovers(`${prefix}-1`)).toEqual([]);
      expect((await vcl(base, 'power_status', doc(1))).json.result).toBe('off');
      expect((await vcl(base, 'node_status', doc(1))).json.result.status).toBe('RELOAD');
      // the master stays: it is the datastore's cache, shared by every computer
      expect(await fs.readdir(store)).toContain(`${image}.qcow2`);
    });
  });
}
