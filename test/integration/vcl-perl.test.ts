/**
 * contrib/vcl/lib/VCL/Module/Provisioning/v2vload.pm driven by perl as VCL core would, with a
 * stand-in for VCL's data object (vcl-perl-standin.pl: VCL::DataStructure's getter names),
 * calling the real CLI (bin/v2v-load.js) against the real libvirtd. One guest boots.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTinyDisk } from '../harness/tiny-disk.js';
import { TINY_READY_MARKER } from '../harness/tiny-guest.js';

// biome-ignore lint/suspicious/noExplicitAny: documents edited field by field to make them wrong
type Loose = any;

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const URI = 'qemu:///system';
const PREFIX = 'v2vl11p';
const NET = `${PREFIX}-net`;
const IMAGE = `${PREFIX}linux-TinyPerl15-v1`;
const CAPTURED = `${PREFIX}linux-TinyPerlCaptured16-v1`;

describe('the VCL Perl module (v2vload.pm) with a stand-in data object', () => {
  let base: string;
  let dataFile: string;
  let repo: string;
  let store: string;

  const perl = async (...calls: string[]) => {
    const { stdout } = await exec(
      'perl',
      [
        '-I',
        path.join(ROOT, 'contrib/vcl/lib'),
        path.join(import.meta.dirname, 'vcl-perl-standin.pl'),
        dataFile,
        ...calls,
      ],
      {
        env: {
          ...process.env,
          V2V_LOAD_CLI: `${process.execPath} ${path.join(ROOT, 'bin/v2v-load.js')}`,
          V2V_LOAD_VMHOST_NODE: 'local',
          V2V_LOAD_DOMAIN_TYPE: 'qemu',
          V2V_LOAD_READY_PATTERN: TINY_READY_MARKER,
          V2V_LOAD_READY_TIMEOUT: '120',
        },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const out: Record<string, { result: Loose; error: Loose }> = {};
    for (const line of stdout.trim().split('\n').filter(Boolean)) {
      const o = JSON.parse(line);
      // a call made twice: the second is CALL#2
      const key = o.call in out ? `${o.call}#2` : o.call;
      out[key] = { result: o.result, error: o.error };
    }
    return out;
  };

  beforeAll(async () => {
    const disk = await buildTinyDisk();
    base = await fs.mkdtemp(`/var/tmp/${PREFIX}-`);
    await fs.chmod(base, 0o755);
    repo = path.join(base, 'repository');
    store = path.join(base, 'datastore');
    for (const d of [repo, store, path.join(repo, IMAGE)]) await fs.mkdir(d, { mode: 0o755 });
    await fs.copyFile(disk, path.join(repo, IMAGE, `${IMAGE}.qcow2`));
    await exec('virsh', ['-c', URI, 'net-destroy', NET]).catch(() => {});
    await fs.writeFile(
      path.join(base, 'net.xml'),
      `<network><name>${NET}</name><bridge name='${PREFIX}b0' stp='off'/></network>`,
    );
    await exec('virsh', ['-c', URI, 'net-create', path.join(base, 'net.xml')]);
    dataFile = path.join(base, 'data.json');
    await fs.writeFile(
      dataFile,
      JSON.stringify({
        reservation_id: 3115,
        request_id: 3081,
        computer_id: 77,
        computer_short_name: `${PREFIX}-77`,
        computer_eth0_mac_address: '52:54:00:11:03:77',
        image_id: 15,
        image_name: IMAGE,
        image_prettyname: 'Tiny Perl',
        imagerevision_revision: 1,
        image_os_type: 'linux',
        image_os_name: `${PREFIX}linux`,
        image_minram: 256,
        image_minprocnumber: 1,
        vmhost_hostname: 'localhost',
        vmhost_profile_datastore_path: store,
        vmhost_profile_vmpath: store,
        vmhost_profile_repository_path: repo,
        vmhost_profile_virtualswitch0: NET,
      }),
    );
  });

  afterAll(async () => {
    const names = (await exec('virsh', ['-c', URI, 'list', '--all', '--name'])).stdout.split('\n');
    for (const n of names.filter((x) => x.startsWith(`${PREFIX}-`))) {
      await exec('virsh', ['-c', URI, 'destroy', n]).catch(() => {});
      await exec('virsh', ['-c', URI, 'undefine', n, '--snapshots-metadata']).catch(() => {});
    }
    await exec('virsh', ['-c', URI, 'net-destroy', NET]).catch(() => {});
    if (base) await fs.rm(base, { recursive: true, force: true });
  });

  it('runs every subroutine of libvirt.pm through the CLI against real libvirt', async () => {
    const dom = `${PREFIX}-77_TinyPerl_15-v1`;
    const r = await perl(
      'initialize',
      'get_driver_name',
      'get_domain_name',
      'get_domain_file_base_name',
      'get_domain_xml_directory_path',
      'get_domain_xml_file_path',
      'get_master_image_directory_path',
      'get_master_image_file_path',
      'get_copy_on_write_file_path',
      'get_new_image_name',
      'get_image_repository_search_paths',
      'does_image_exist',
      'get_image_size',
      'get_image_size_bytes',
      'find_repository_image_file_paths',
      'generate_domain_xml',
      'load',
      'node_status',
      'power_status',
      'get_domain_info',
      `domain_exists:${dom}`,
      `get_domain_xml:${dom}`,
      `create_snapshot:${dom},VCL snapshot,snap1`,
      `get_snapshot_info:${dom}`,
      `delete_snapshot:${dom},snap1`,
      `set:image_name,${CAPTURED}`,
      'capture',
      `does_image_exist:${CAPTURED}`,
      `set:image_name,${IMAGE}`,
      'power_on',
      'power_reset',
      'power_off',
      'power_status',
      `delete_domain:${dom}`,
      `domain_exists:${dom}`,
      'delete_existing_domains',
      'post_maintenance_action',
      'node_status',
    );
    const errors = Object.entries(r).filter(([, v]) => v.error);
    expect(errors).toEqual([]);
    expect(r.initialize?.result).toBe(1);
    expect(r.get_driver_name?.result).toBe('QEMU-TCG');
    expect(r.get_domain_name?.result).toBe(dom);
    expect(r.get_domain_file_base_name?.result).toBe(`${PREFIX}-77_15-v1`);
    expect(r.get_domain_xml_directory_path?.result).toBe('/tmp/vcl');
    expect(r.get_domain_xml_file_path?.result).toBe(`/tmp/vcl/${PREFIX}-77_15-v1.xml`);
    expect(r.get_master_image_directory_path?.result).toBe(store);
    expect(r.get_master_image_file_path?.result).toBe(path.join(store, `${IMAGE}.qcow2`));
    expect(r.get_copy_on_write_file_path?.result).toBe(
      path.join(store, `${PREFIX}-77_15-v1.qcow2`),
    );
    expect(r.get_new_image_name?.result).toBe(`${PREFIX}linux-TinyPerl15-v1`);
    expect(r.get_image_repository_search_paths?.result).toEqual([
      path.join(repo, IMAGE, `${IMAGE}*`),
      path.join(repo, `${IMAGE}*`),
      path.join(store, `${IMAGE}*`),
    ]);
    expect(r.does_image_exist?.result).toEqual(path.join(repo, IMAGE, `${IMAGE}.qcow2`));
    expect(r.get_image_size?.result).toBeGreaterThan(0);
    expect(r.get_image_size_bytes?.result).toBeGreaterThan(r.get_image_size?.result);
    expect(r.find_repository_image_file_paths?.result).toEqual(
      path.join(repo, IMAGE, `${IMAGE}.qcow2`),
    );
    expect(r.generate_domain_xml?.result).toContain(`<name>${dom}</name>`);
    expect(r.load?.result).toBe(1);
    expect(r.node_status?.result).toBe('READY');
    expect(r.power_status?.result).toBe('on');
    expect(r.get_domain_info?.result[dom]).toMatchObject({ state: 'running' });
    expect(r[`domain_exists:${dom}`]?.result).toBe(1);
    expect(r[`domain_exists:${dom}#2`]?.result).toBe(0); // after delete_domain
    expect(r[`get_domain_xml:${dom}`]?.result).toContain('<v2vload:imageName>');
    expect(r[`create_snapshot:${dom},VCL snapshot,snap1`]?.result).toBe(1);
    expect(Object.keys(r[`get_snapshot_info:${dom}`]?.result ?? {})).toEqual(['snap1']);
    expect(r[`delete_snapshot:${dom},snap1`]?.result).toBe(1);
    expect(r.capture?.result).toBe(1);
    expect(r[`does_image_exist:${CAPTURED}`]?.result).toEqual(
      path.join(store, `${CAPTURED}.qcow2`),
    );
    expect(await fs.readdir(path.join(repo, CAPTURED))).toEqual([
      `${CAPTURED}.qcow2`,
      `${CAPTURED}.xml`,
    ]);
    expect(r.power_on?.result).toBe(1);
    expect(r.power_reset?.result).toBe(1);
    expect(r.power_off?.result).toBe(1);
    expect(r['power_status#2']?.result).toBe('off');
    expect(r['node_status#2']?.result).toBe('RELOAD');
    expect(r[`delete_domain:${dom}`]?.result).toBe(1);
    expect(r.delete_existing_domains?.result).toBe(1);
    expect(r.post_maintenance_action?.result).toBe(1);
    const names = (await exec('virsh', ['-c', URI, 'list', '--all', '--name'])).stdout;
    expect(names).not.toContain(`${PREFIX}-77`);
    expect((await fs.readdir(store)).filter((f) => f.startsWith(`${PREFIX}-77`))).toEqual([]);
  });

  it('reports a failure as false with the error of the CLI', async () => {
    const r = await perl('set:vmhost_profile_datastore_path,relative/path', 'load', 'node_status');
    expect(r.load?.result).toBe(0);
    expect(r.load?.error?.code).toBe('RESERVATION_INVALID');
    expect(r.load?.error?.message).toContain('vmhost.datastorePath: an absolute path');
    expect(r.node_status?.result).toBe('RELOAD');
  });
});
