// The real headless host in web mode (the same pieces as main/cli/web.ts) on a fresh data
// folder, with sample data a technician would have after a few boots: machines from a CSV,
// library entries added through the API, and the boot events the services publish while a
// PC boots (put on the host's bus here, so nothing is sent on any network). Used by the
// accessibility test and by scripts/screenshots.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createUiHost, type UiHost } from '../../main/web/ui-host.js';
import { startWebMode, type WebMode } from '../../main/web/web-mode.js';
import type { ApiCallName, ApiRequest, ApiResponse, NetInterfaceInfo } from '../../preload/api.js';
import { listInterfaces } from '../../main/net/index.js';
import type { Page } from 'playwright-core';
import { buildBzImage, buildCpioNewc, buildPe } from '../unit/library-fixtures.js';
import { ImagingJobs } from '../../main/imaging/index.js';
import { addSampleImage } from './sample-image.js';

export const SCREENS = ['start', 'library', 'machines', 'room', 'images', 'live', 'timeline'] as const;
export type ScreenName = (typeof SCREENS)[number];

export const SAMPLE_MACS = { booted: '52:54:00:12:34:07', downloading: '52:54:00:12:34:08' } as const;

export interface SampleUi {
  url: string;
  ui: UiHost;
  web: WebMode;
  close(): Promise<void>;
}

async function call<C extends ApiCallName>(web: WebMode, name: C, request?: ApiRequest<C>): Promise<ApiResponse<C>> {
  const reply = await web.api.handle(name, request);
  if ('error' in reply && reply.error) throw new Error(`${name}: ${reply.error.message}`);
  return (reply as { result: ApiResponse<C> }).result;
}

/**
 * Starts the host and its web UI on 127.0.0.1 (any free port) and fills it with sample data.
 * `interfaces` replaces this machine's NIC list (pictures should not show the NICs of
 * whatever machine took them); the services are never started.
 */
export async function startSampleUi(options: { dataDir: string; interfaces?: NetInterfaceInfo[] }): Promise<SampleUi> {
  const files = join(options.dataDir, '..', 'sample-files');
  mkdirSync(files, { recursive: true });
  writeFileSync(join(files, 'memtest.efi'), Buffer.concat([buildPe(0x8664), Buffer.alloc(160 * 1024, 1)]));
  mkdirSync(join(files, 'rescue'), { recursive: true });
  writeFileSync(join(files, 'rescue', 'vmlinuz'), Buffer.concat([buildBzImage({ version: '6.1.0-rescue' }), Buffer.alloc(2 * 1024 * 1024, 2)]));
  writeFileSync(join(files, 'rescue', 'initrd.img'), buildCpioNewc());

  const ui = createUiHost({ dataDir: options.dataDir });
  const web = await startWebMode({
    host: ui.host,
    store: ui.apiStore,
    library: ui.library,
    listInterfaces: options.interfaces ? () => options.interfaces! : () => listInterfaces(),
    port: 0,
    version: 'sample',
    notices: () => ui.notices,
  });

  await call(web, 'entries:import', { paths: [join(files, 'memtest.efi'), join(files, 'rescue')] });
  await call(web, 'machines:import-csv', {
    csv: `mac,name,group\n${SAMPLE_MACS.booted},bench-07,row-a\n${SAMPLE_MACS.downloading},bench-08,row-a\n52:54:00:12:34:09,bench-09,row-b\n`,
  });
  const entries = await call(web, 'entries:list');
  const machines = await call(web, 'machines:list');
  const memtest = entries.find((e) => e.name.includes('memtest'));
  const bench07 = machines.find((m) => m.name === 'bench-07');
  if (memtest && bench07) await call(web, 'machines:update', { id: bench07.id, entryId: memtest.id });

  // Two images, and a deploy to row a and bench-09 under way: one PC writing, one failed, one
  // not booted yet. Reports are stamped two seconds apart so the row has a rate.
  await addSampleImage(options.dataDir, {
    name: 'win11-lab',
    mac: '52:54:00:12:34:01',
    machine: 'reference-pc',
    chunksPerPartition: 6,
    diskBytes: 256 * 1024 ** 3,
  });
  await addSampleImage(options.dataDir, {
    name: 'ubuntu-24.04-ref',
    mac: '52:54:00:12:34:02',
    machine: 'linux-ref',
    chunksPerPartition: 3,
    diskBytes: 128 * 1024 ** 3,
  });
  const deploy = await call(web, 'images:deploy', { image: 'win11-lab', macs: [SAMPLE_MACS.booted, SAMPLE_MACS.downloading, '52:54:00:12:34:09'] });
  let reportedAt = Date.now() - 2000;
  const jobs = new ImagingJobs(ui.store!.db, () => reportedAt);
  const GIB = 1024 ** 3;
  jobs.report(deploy.id, SAMPLE_MACS.booted, { phase: 'writing', bytes: 21 * GIB, total: 38 * GIB });
  jobs.report(deploy.id, SAMPLE_MACS.downloading, {
    phase: 'failed',
    reason:
      '2 internal disks and the task names none: choose one by serial or model (--disk); disks seen: name=nvme0n1 size=512110190592 transport=nvme removable=0 model=Samsung_SSD_980 serial=S64DNF0R;name=sda size=1000204886016 transport=sata removable=0 model=WDC_WD10EZEX serial=WD-WCC6Y7',
  });
  reportedAt += 2000;
  jobs.report(deploy.id, SAMPLE_MACS.booted, { phase: 'writing', bytes: 21 * GIB + 360 * 1024 ** 2, total: 38 * GIB });

  // What the services publish while bench-07 booted memtest a minute and a half ago and
  // bench-08 is mid-download now, at the times they would have happened.
  const at = ui.host.bus.publishAt;
  const now = Date.now();
  const uefi = { msgType: 'DISCOVER', arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003016', port: 67 };
  at('dhcp.received', now - 95_000, { mac: SAMPLE_MACS.booted, xid: 1, ...uefi });
  at('proxy.offer', now - 94_900, { mac: SAMPLE_MACS.booted, file: 'library/e1/memtest.efi' });
  at('tftp.start', now - 91_200, {
    mac: SAMPLE_MACS.booted,
    ip: '192.0.2.107',
    transferId: 'sample-1',
    file: 'library/e1/memtest.efi',
    size: 164_000,
    options: { blksize: 1468, windowsize: 4, tsize: 164_000 },
  });
  at('tftp.done', now - 91_000, {
    mac: SAMPLE_MACS.booted,
    ip: '192.0.2.107',
    transferId: 'sample-1',
    file: 'library/e1/memtest.efi',
    bytes: 164_000,
    retransmits: 0,
  });
  at('dhcp.received', now - 6_000, { mac: SAMPLE_MACS.downloading, xid: 2, ...uefi });
  at('proxy.offer', now - 5_900, { mac: SAMPLE_MACS.downloading, file: 'library/e2/vmlinuz' });
  at('http.start', now - 3_000, { mac: SAMPLE_MACS.downloading, ip: '192.0.2.108', transferId: 'sample-2', file: 'library/e2/vmlinuz', size: 8_300_000 });
  at('http.progress', now, {
    mac: SAMPLE_MACS.downloading,
    ip: '192.0.2.108',
    transferId: 'sample-2',
    file: 'library/e2/vmlinuz',
    bytes: 3_100_000,
    size: 8_300_000,
    rate: 1_050_000,
  });

  return {
    url: web.url,
    ui,
    web,
    async close() {
      await web.close();
      await ui.close();
    },
  };
}

/** Opens one screen of the sample UI and waits until its sample data is on it. */
export async function openScreen(page: Page, screen: ScreenName): Promise<void> {
  if (screen === 'timeline') {
    await page.click('[data-screen=machines]');
    await page
      .locator(`tr[data-mac="${SAMPLE_MACS.booted}"]`)
      .getByRole('button', { name: /Timeline/ })
      .click();
  } else {
    await page.click(`[data-screen=${screen}]`);
  }
  const ready: Record<ScreenName, string> = {
    start: 'text=1. Network card',
    library: '[data-testid=entries] >> text=memtest',
    machines: `tr[data-mac="${SAMPLE_MACS.booted}"]`,
    room: '[data-testid=room] [data-machine="bench-07"]',
    images: `[data-job] tr[data-mac="${SAMPLE_MACS.booted}"]`,
    live: '[data-testid=transfer-history] >> text=memtest',
    timeline: '[data-testid=timeline-events]',
  };
  await page.locator(ready[screen]).first().waitFor({ timeout: 10_000 });
}
