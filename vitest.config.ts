import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    reporters: ['default', './test/harness/summary-reporter.ts'],
    setupFiles: ['reflect-metadata'],
    // libguestfs on these machines: direct backend, and TCG (KVM hangs; see ENVIRONMENT.md).
    env: { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' },
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // 2 cores: integration files run one after another, so timings stay sane.
          fileParallelism: false,
        },
      },
    ],
  },
});
