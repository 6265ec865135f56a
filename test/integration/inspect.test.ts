/**
 * `v2v-load inspect` through the real binary: the same source read locally and over the SSH
 * node gives the same model; bad input exits non-zero with an error naming the input.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { SourceGuest } from '../../src/metadata/model.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../../bin/v2v-load.js');
const sshd = inject('sshd');
const viaSsh = ['--host', sshd.url, '--identity', sshd.identity, '--known-hosts', sshd.knownHosts];

async function v2vLoad(...args: string[]) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: 120_000 });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { status: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const VMX = `.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "inspect-demo"
guestOS = "debian11-64"
memsize = "2048"
numvcpus = "2"
cpuid.coresPerSocket = "2"
firmware = "efi"
uuid.bios = "56 4d 9f 1b 2c 3d 4e 5f-60 71 82 93 a4 b5 c6 d7"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "inspect-demo.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "static"
ethernet0.address = "00:50:56:AA:BB:CC"
`;

describe('v2v-load inspect', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-inspect-it-'));
    await fs.writeFile(path.join(dir, 'inspect-demo.vmx'), VMX);
    await run('qemu-img', [
      'create',
      '-q',
      '-f',
      'vmdk',
      path.join(dir, 'inspect-demo.vmdk'),
      '64M',
    ]);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('reads a .vmx into the same model locally and over SSH', async () => {
    const vmx = path.join(dir, 'inspect-demo.vmx');
    const local = await v2vLoad('inspect', vmx, '--json');
    expect(local.status, local.stderr).toBe(0);
    const guest = JSON.parse(local.stdout) as SourceGuest;
    expect(guest).toMatchObject({
      name: 'inspect-demo',
      hypervisor: 'vmware',
      firmware: 'uefi',
      memoryBytes: 2 * 1024 ** 3,
      vcpus: 2,
      uuid: '564d9f1b-2c3d-4e5f-6071-8293a4b5c6d7',
      disks: [
        {
          path: path.join(dir, 'inspect-demo.vmdk'),
          format: 'vmdk',
          bus: 'scsi',
          controller: 'pvscsi',
        },
      ],
      nics: [{ mac: '00:50:56:aa:bb:cc', model: 'vmxnet3', network: 'VM Network' }],
    });
    const remote = await v2vLoad('inspect', vmx, '--json', ...viaSsh);
    expect(remote.status, remote.stderr).toBe(0);
    expect(JSON.parse(remote.stdout)).toEqual(guest);

    const text = await v2vLoad('inspect', vmx);
    expect(text.stdout).toMatch(/^ {8}source: vmx /);
    expect(text.stdout).toContain('hypervisor: vmware');
  });

  it('reads bare disks with -i disk', async () => {
    const r = await v2vLoad(
      'inspect',
      path.join(dir, 'inspect-demo.vmdk'),
      '--name',
      'bare',
      '--memory',
      '512M',
      '--json',
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      name: 'bare',
      memoryBytes: 512 * 1024 ** 2,
      hypervisor: 'unknown',
    });
  });

  it('refuses bad input with an error naming it, and a non-zero exit', async () => {
    const missing = path.join(dir, 'nope.vmx');
    const r = await v2vLoad('inspect', missing);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(missing);

    const usage = await v2vLoad('inspect', '-i', 'vhd', missing);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/Invalid values/);

    const guess = await v2vLoad('inspect', path.join(dir, 'notes.txt'));
    expect(guess.status).toBe(2);
    expect(guess.stderr).toMatch(/cannot tell what kind of source/);

    const dom = await v2vLoad('inspect', '-i', 'libvirt', 'v2vtest-no-such-domain', '--json');
    expect(dom.status).toBe(1);
    expect(dom.stderr).toContain('v2vtest-no-such-domain');
    // nothing left behind in the private temp dirs
    const leftovers = (await fs.readdir(os.tmpdir())).filter(
      (n) => n.startsWith('v2v-load-inspect-') && !dir.endsWith(n),
    );
    expect(leftovers).toEqual([]);
  });
});
