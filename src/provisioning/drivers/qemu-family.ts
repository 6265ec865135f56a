/**
 * What the QEMU-based drivers (KVM, plain QEMU/TCG) share: VCL's KVM.pm pre_define. The master
 * in the datastore, else fetched from the repository through the master cache (a VMware image
 * there is converted on the way; a Windows image gets the registry changes on its fresh copy,
 * before it becomes the master), then one copy-on-write image per disk of the master.
 */
import { findQemuOn } from '../../hvtarget/kvm-probe.js';
import { StorageError } from '../../storage/errors.js';
import { CowMode, runMode } from '../../storage/modes/index.js';
import { findInRepository } from '../../storage/repository.js';
import { copyOnWriteFilePath, diskFileName, masterImageFilePath } from '../naming.js';
import type { DriverContext, PreDefineSteps, PreparedDisks } from './driver.js';

/** The master in the datastore (fetched or converted when missing), then the COW images. */
export async function qemuPreDefine(
  ctx: DriverContext,
  steps: PreDefineSteps,
): Promise<PreparedDisks> {
  const { node, res } = ctx;
  const image = res.image.name;
  const master = masterImageFilePath(res);
  const repo = res.vmhost.repositoryPath;
  let copied = false;
  let converted = false;
  if (!(await node.stat(master))) {
    if (!repo) {
      throw new StorageError(
        master,
        `image ${image} is not in the datastore and vmhost.repositoryPath is not set`,
        { hint: 'copy the master into the datastore, or give the repository path' },
      );
    }
    const found = await findInRepository(node, repo, image);
    if (found?.entry.format === 'vmdk') {
      ctx.log.info(`converting the VMware image ${found.entry.path} into ${master}`);
      converted = await ctx.convertMaster(found);
    } else {
      await ctx.masters.ensure({
        datastore: res.vmhost.datastorePath,
        repository: repo,
        image,
        format: res.image.diskFormat,
        prepare:
          res.image.osType === 'windows'
            ? async (copy, from) => {
                converted = await ctx.prepareWindowsMaster(copy, from);
              }
            : undefined,
      });
    }
    copied = true;
  }
  // The image's other disks (its recorded domain XML says how many): beside the master, else
  // fetched from the image's directory in the repository.
  const count = (await ctx.recordedHardware()).diskCount ?? 1;
  const masters = [master];
  for (let n = 1; n < count; n++) {
    const extra = masterImageFilePath(res, image, n);
    if (!(await node.stat(extra))) {
      if (!repo) {
        throw new StorageError(
          extra,
          `disk ${n + 1} of image ${image} is not in the datastore and vmhost.repositoryPath is not set`,
          { hint: "copy the image's disks into the datastore, or give the repository path" },
        );
      }
      await ctx.masters.ensure({
        datastore: res.vmhost.datastorePath,
        repository: repo,
        image: diskFileName(image, n),
        inImageDirectory: image,
        format: res.image.diskFormat,
      });
      copied = true;
    }
    masters.push(extra);
  }
  await steps.masterReady(master, copied);
  const disks: PreparedDisks['disks'] = [];
  const q = ctx.qemu.allowing(res.vmhost.datastorePath);
  for (const [n, m] of masters.entries()) {
    const cow = copyOnWriteFilePath(res, n);
    // A COW image of this computer left by an earlier load that never finished: it is this
    // computer's own file (its name says so), never a master.
    await node.remove(cow);
    steps.cowCreated(cow);
    await runMode(new CowMode(), q, {
      source: { path: m, format: res.image.diskFormat },
      target: { path: cow, format: 'qcow2' },
    });
    disks.push({ path: cow, format: 'qcow2' });
  }
  return { disks, master, masters, masterCopied: copied, masterConverted: converted };
}

export { QEMU_BINARIES } from '../../hvtarget/kvm-probe.js';

/** The first QEMU emulator the node has, or undefined. */
export async function findQemuBinary(ctx: DriverContext): Promise<string | undefined> {
  return findQemuOn(ctx.node);
}
