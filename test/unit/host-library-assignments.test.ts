// The DHCP policy's view of the library while imaging waits: a PC with a task of its own is
// sent to the imaging environment, and while a capture waits for the next machine that boots
// every PC is, except a machine whose own entry is its local disk, until one PC claims it.
import { test, describe, beforeEach, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openStore, type Store } from '../../main/store/index.js';
import { LibraryBootService } from '../../main/library/boot-service.js';
import { libraryAssignments } from '../../main/host/library-assignments.js';
import { ANY_MACHINE, ImagingJobs } from '../../main/imaging/jobs.js';
import { makeTempDir } from '../helpers/store-temp.js';

const BASE = 'http://192.0.2.1:8080';
const REFERENCE = '52:54:00:00:60:01';
const KEPT = '52:54:00:00:60:02';
const STRANGER = '52:54:00:00:60:03';

const temp = makeTempDir('bootbench-host-assignments-');
after(() => temp.remove());
let counter = 0;
let store: Store;
let jobs: ImagingJobs;

function source(signedChain = false) {
  const library = new LibraryBootService({ store, dataDir: temp.dir, httpBaseUrl: BASE, serverAddress: '192.0.2.1', httpPort: 8080 });
  const pending = () => new Set(jobs.list().flatMap((j) => j.machines.filter((m) => !m.result && m.mac !== ANY_MACHINE).map((m) => m.mac)));
  return libraryAssignments({
    store,
    library,
    httpBaseUrl: BASE,
    haveStaticScript: false,
    signedChainForImaging: signedChain,
    imagingMacs: pending,
    imagingAnyMachine: () => jobs.waitingForAnyMachine(),
  });
}

beforeEach(() => {
  store = openStore(join(temp.dir, `assignments-${++counter}`));
  jobs = new ImagingJobs(store.db);
});
afterEach(() => store.close());

describe('library assignments while imaging waits', () => {
  test('waiting for the next machine, every PC is offered the environment but one whose own entry is its local disk; after the claim, only that PC', () => {
    const disk = store.entries.create({ name: 'Disk', kind: 'local-disk' });
    store.machines.create({ macs: [KEPT], entryId: disk.id });
    // The bench default is the local disk: the capture still reaches an unknown PC.
    store.settings.set('defaults', { entryId: disk.id });
    const assignments = source(true);
    assert.equal(assignments.view().defaultAssignment?.ignore, true, 'before the capture, unknown PCs boot their disk');

    const job = jobs.create({ kind: 'capture', image: 'reference', macs: [ANY_MACHINE] });
    const imaging = { ipxeScriptUrl: `${BASE}/ipxe/boot.ipxe`, boot: { uefi64: 'bootbench/shim/shimx64.efi' } };
    const view = assignments.view();
    assert.deepEqual(view.defaultAssignment?.ipxeScriptUrl, imaging.ipxeScriptUrl);
    assert.ok(view.defaultAssignment?.boot?.uefi64?.endsWith('.efi'), 'UEFI x64 PCs get the signed chain (full DHCP)');
    assert.equal(assignments.lookup(STRANGER)?.ipxeScriptUrl, imaging.ipxeScriptUrl);
    assert.equal(assignments.lookup(KEPT)?.ignore, true, 'a machine whose own entry is its disk is left alone');

    jobs.claimFor(REFERENCE);
    assert.equal(jobs.get(job.id)!.machines[0].mac, REFERENCE);
    assert.equal(assignments.view().defaultAssignment?.ignore, true, 'after the claim, unknown PCs boot their disk again');
    assert.equal(assignments.lookup(STRANGER)?.ignore, true);
    assert.equal(assignments.lookup(REFERENCE)?.ipxeScriptUrl, imaging.ipxeScriptUrl, 'the claiming PC keeps its task');
    assert.ok(assignments.view().macs.includes(REFERENCE), 'and the DHCP thread asks for it');
  });
});
