/**
 * What the QEMU-based drivers (KVM, plain QEMU/TCG) share: VCL's KVM.pm pre_define. The master
 * in the datastore, else fetched from the repository through the master cache (a VMware image
 * there is converted on the way), then the computer's copy-on-write image over it.
 */
import { findQemuOn } from '../../hvtarget/kvm-probe.js';
import { StorageError } from '../../storage/errors.js';
import { CowMode, runMode } from '../../storage/modes/index.js';
import { findInRepository } from '../../storage/repository.js';
import { copyOnWriteFilePath, masterImageFilePath } from '../naming.js';
import type { DriverContext, PreDefineSteps, PreparedDisks } from './driver.js';

/** The master in the datastore (fetched or converted when missing), then the COW image. */
export async function qemuPreDefine(
  ctx: DriverContext,
  steps: PreDefineSteps,
): Promise<PreparedDisks> {
  const { node, res } = ctx;
  const master = masterImageFilePath(res);
  let copied = false;
  if (!(await node.stat(master))) {
    const repo = res.vmhost.repositoryPath;
    if (!repo) {
      throw new StorageError(
        master,
        `image ${res.image.name} is not in the datastore and vmhost.repositoryPath is not set`,
        { hint: 'copy the master into the datastore, or give the repository path' },
      );
    }
    const found = await findInRepository(node, repo, res.image.name);
    if (found?.entry.format === 'vmdk') {
      ctx.log.info(`converting the VMware image ${found.entry.path} into ${master}`);
      await ctx.convertMaster(found, master);
    } else {
      await ctx.masters.ensure({
        datastore: res.vmhost.datastorePath,
        repository: repo,
        image: res.image.name,
        format: res.image.diskFormat,
      });
    }
    copied = true;
  }
  await steps.masterReady(master, copied);
  const cow = copyOnWriteFilePath(res);
  // A COW image of this computer left by an earlier load that never finished: it is this
  // computer's own file (its name says so), never a master.
  await node.remove(cow);
  steps.cowCreated(cow);
  await runMode(new CowMode(), ctx.qemu.allowing(res.vmhost.datastorePath), {
    source: { path: master, format: res.image.diskFormat },
    target: { path: cow, format: 'qcow2' },
  });
  return { disks: [{ path: cow, format: 'qcow2' }], master, masterCopied: copied };
}

export { QEMU_BINARIES } from '../../hvtarget/kvm-probe.js';

/** The first QEMU emulator the node has, or undefined. */
export async function findQemuBinary(ctx: DriverContext): Promise<string | undefined> {
  return findQemuOn(ctx.node);
}
