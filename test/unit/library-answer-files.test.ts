// Answer files per machine: rendering per dialect with the machine list's and the host's
// values, the refusals (unknown variable, missing value), the files wimboot injects for
// Windows, the callbacks, the serving rule, and the template's storage.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import jsYaml from 'js-yaml';
import {
  answerRefusals,
  answerRequest,
  buildGrubConfig,
  buildIpxeScript,
  checkTemplate,
  nextAssignmentAfterInstall,
  readAnswerTemplate,
  removeAnswerTemplate,
  renderAnswerFiles,
  templateVariables,
  writeAnswerTemplate,
  AnswerFileService,
  WINPESHL_INI,
  type AnswerMachine,
  type AnswerRendering,
  type AnswerTemplate,
  type ScriptEntry,
} from '../../main/library/index.js';
import { openStore, importMachinesCsv, exportMachinesCsv, machineFields, installStates, type Store } from '../../main/store/index.js';
import { makeTempDir, fakeSha256 } from '../helpers/store-temp.js';

const temp = makeTempDir('bootbench-answers-');
after(() => temp.remove());

const HOST = { serverAddress: '192.0.2.1', httpBaseUrl: 'http://192.0.2.1:8080' };
const PC: AnswerMachine = {
  name: 'pc07',
  mac: '52:54:00:00:00:07',
  uuid: '4c4c4544-0042-3510-8052-b4c04f4e4a37',
  group: 'room-3',
  fields: { locale: 'de_DE.UTF-8', root_password: 's3cret&<x>' },
};
const FOLDER = 'http://192.0.2.1:8080/answers/e4/525400000007';

function rendered(template: AnswerTemplate, machine: AnswerMachine = PC): AnswerRendering {
  const result = renderAnswerFiles(template, machine, HOST, 4);
  assert.ok(result.ok, result.ok ? '' : result.message);
  return result;
}
const file = (r: AnswerRendering, name: string) => r.files.find((f) => f.name === name)!.body;

describe('rendering per dialect', () => {
  test('preseed: values filled in, kernel arguments point at the PC’s own file, callbacks at the end', () => {
    const r = rendered({
      dialect: 'preseed',
      text: 'd-i netcfg/get_hostname string {{ name }}\nd-i debian-installer/locale string {{locale}}\nd-i mirror/http/hostname string {{server_address}}\n',
    });
    assert.equal(r.kernelArguments, `auto=true priority=critical url=${FOLDER}/preseed.cfg hostname=pc07`);
    assert.deepEqual(r.inject, []);
    const body = file(r, 'preseed.cfg');
    assert.match(
      body,
      /^d-i netcfg\/get_hostname string pc07\nd-i debian-installer\/locale string de_DE\.UTF-8\nd-i mirror\/http\/hostname string 192\.0\.2\.1\n/,
    );
    assert.match(
      body,
      new RegExp(`d-i preseed/early_command string wget -q -O /dev/null "${FOLDER}/started\\?hostname=\\$\\(cat /proc/sys/kernel/hostname\\)"`),
    );
    assert.match(body, new RegExp(`d-i preseed/late_command string wget -q -O /dev/null "${FOLDER}/installed"\n$`));
  });

  test('preseed: the template’s own late_command (continued over lines) keeps running, with the callback after it', () => {
    const r = rendered({ dialect: 'preseed', text: 'd-i preseed/late_command string \\\n  in-target touch /done ; \\\n  echo ok\nd-i foo/bar string x\n' });
    const body = file(r, 'preseed.cfg');
    assert.equal((body.match(/preseed\/late_command/g) ?? []).length, 1, 'one late_command: a second would replace the first');
    assert.match(body, new RegExp(`  echo ok; wget -q -O /dev/null "${FOLDER}/installed"\nd-i foo/bar string x`));
  });

  test('autoinstall: user-data keeps the template’s commands and adds the callbacks; meta-data names the PC; ds=nocloud-net with the folder', () => {
    const r = rendered({
      dialect: 'autoinstall',
      text: '#cloud-config\nautoinstall:\n  version: 1\n  identity:\n    hostname: {{name}}\n    password: "{{root_password}}"\n  late-commands:\n    - echo first\n',
    });
    assert.equal(r.kernelArguments, `autoinstall ds=nocloud-net;s=${FOLDER}/`);
    const userData = file(r, 'user-data');
    assert.ok(userData.startsWith('#cloud-config\n'));
    const doc = jsYaml.load(userData) as { autoinstall: Record<string, unknown> };
    assert.deepEqual(doc.autoinstall.identity, { hostname: 'pc07', password: 's3cret&<x>' });
    assert.deepEqual(doc.autoinstall['late-commands'], ['echo first', `wget -q -O /dev/null "${FOLDER}/installed" || true`]);
    assert.deepEqual(doc.autoinstall['early-commands'], [`wget -q -O /dev/null "${FOLDER}/started?hostname=$(hostname)" || true`]);
    assert.equal(file(r, 'meta-data'), 'instance-id: bootbench-525400000007\nlocal-hostname: pc07\n');
    assert.equal(file(r, 'vendor-data'), '');
  });

  test('autoinstall: lists at the key’s own indentation, a missing autoinstall block, comments kept; flow lists and tabs refused', () => {
    const sameIndent = file(
      rendered({
        dialect: 'autoinstall',
        text: '#cloud-config\n# keep me\nautoinstall:\n    version: 1\n    late-commands:\n    - echo a\n    - |\n      echo b\n    storage: {layout: {name: lvm}}\nother: 1\n',
      }),
      'user-data',
    );
    assert.match(sameIndent, /# keep me/);
    const doc = jsYaml.load(sameIndent) as { autoinstall: Record<string, unknown>; other: number };
    assert.deepEqual(doc.autoinstall['late-commands'], ['echo a', 'echo b\n', `wget -q -O /dev/null "${FOLDER}/installed" || true`]);
    assert.deepEqual(doc.autoinstall.storage, { layout: { name: 'lvm' } });
    assert.equal(doc.other, 1);
    const bare = jsYaml.load(file(rendered({ dialect: 'autoinstall', text: 'users: []\n' }), 'user-data')) as { autoinstall: Record<string, unknown> };
    assert.equal(bare.autoinstall.version, 1);
    assert.equal((bare.autoinstall['early-commands'] as string[]).length, 1);
    assert.match(checkTemplate({ dialect: 'autoinstall', text: 'autoinstall:\n  late-commands: [a]\n' }, [])[0], /block list/);
    assert.match(checkTemplate({ dialect: 'autoinstall', text: 'autoinstall:\n\tversion: 1\n' }, [])[0], /tabs/);
  });

  test('kickstart: inst.ks= and a %pre and %post --nochroot that call back', () => {
    const r = rendered({ dialect: 'kickstart', text: 'network --hostname={{name}}\nrootpw {{root_password}}\n%post\necho hi\n%end' });
    assert.equal(r.kernelArguments, `inst.ks=${FOLDER}/ks.cfg`);
    const body = file(r, 'ks.cfg');
    assert.ok(body.startsWith('network --hostname=pc07\nrootpw s3cret&<x>\n%post\necho hi\n%end\n'));
    assert.match(body, new RegExp(`%pre\ncurl -s -o /dev/null "${FOLDER}/started\\?hostname=\\$\\(hostname\\)" \\|\\| true\n%end`));
    assert.match(body, new RegExp(`%post --nochroot\ncurl -s -o /dev/null "${FOLDER}/installed" \\|\\| true\n%end\n$`));
  });

  test('Windows: values XML-escaped; wimboot injects autounattend.xml and winpeshl.ini; SetupComplete.cmd is written in the specialize pass', () => {
    const xml =
      '<?xml version="1.0"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">\n' +
      '<settings pass="oobeSystem"><component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64"><ComputerName>{{name}}</ComputerName>' +
      '<Password>{{root_password}}</Password></component></settings>\n</unattend>\n';
    const r = rendered({ dialect: 'autounattend', text: xml });
    assert.equal(r.kernelArguments, '');
    assert.deepEqual(r.inject, [
      { name: 'autounattend.xml', url: `${FOLDER}/autounattend.xml` },
      { name: 'winpeshl.ini', url: `${FOLDER}/winpeshl.ini` },
    ]);
    const body = file(r, 'autounattend.xml');
    assert.match(body, /<Password>s3cret&amp;&lt;x&gt;<\/Password>/);
    assert.match(body, /<settings pass="specialize"><component name="Microsoft-Windows-Deployment" processorArchitecture="amd64"/);
    assert.ok(body.includes(`SetupComplete.cmd`) && body.includes(`DownloadString(&apos;${FOLDER}/installed&apos;)`));
    assert.equal(file(r, 'winpeshl.ini'), WINPESHL_INI);
    assert.match(WINPESHL_INI, /^\[LaunchApps\]\r\n.*wpeinit\.exe\r\nX:\\sources\\setup\.exe, \/unattend:X:\\Windows\\System32\\autounattend\.xml\r\n$/);
  });

  test('Windows: an existing specialize Deployment list gets the callback as its next Order', () => {
    const xml =
      '<unattend><settings pass="specialize"><component name="Microsoft-Windows-Deployment" processorArchitecture="x86"><RunSynchronous>' +
      '<RunSynchronousCommand><Order>1</Order><Path>a</Path></RunSynchronousCommand><RunSynchronousCommand><Order>4</Order><Path>b $&</Path></RunSynchronousCommand>' +
      '</RunSynchronous></component></settings></unattend>';
    const body = file(rendered({ dialect: 'autounattend', text: xml }), 'autounattend.xml');
    assert.equal((body.match(/pass="specialize"/g) ?? []).length, 1);
    assert.equal((body.match(/Microsoft-Windows-Deployment/g) ?? []).length, 1);
    assert.match(body, /<Path>b \$&<\/Path><\/RunSynchronousCommand><RunSynchronousCommand wcm:action="add"><Order>5<\/Order>/);
  });
});

describe('refusals, before anything boots', () => {
  test('a template with an unknown variable is refused, naming the variable and what is known', () => {
    const problems = checkTemplate({ dialect: 'preseed', text: 'd-i x string {{name}} {{favourite_colour}}' }, ['locale']);
    assert.equal(problems.length, 1);
    assert.match(problems[0], /\{\{favourite_colour\}\}/);
    assert.match(problems[0], /\{\{locale\}\}/);
    assert.deepEqual(checkTemplate({ dialect: 'preseed', text: 'd-i x string {{locale}}' }, ['locale']), []);
    assert.deepEqual(templateVariables('{{ A }} {{b}} {{a}} {not} {{ 1x }}'), ['a', 'b']);
  });

  test('a broken template shows when it is saved (autoinstall layout, Windows without <unattend>)', () => {
    assert.match(checkTemplate({ dialect: 'autoinstall', text: 'autoinstall: {version: 1}\n' }, [])[0], /as a block/);
    assert.match(checkTemplate({ dialect: 'autounattend', text: '<xml/>' }, [])[0], /<unattend>/);
  });

  test('a machine missing a value it needs is refused, naming the machine and the variable', () => {
    const noUuid = renderAnswerFiles({ dialect: 'kickstart', text: 'x {{uuid}}' }, { ...PC, uuid: null }, HOST, 4);
    assert.equal(noUuid.ok, false);
    assert.ok(!noUuid.ok && noUuid.machine === 'pc07' && noUuid.variable === 'uuid');
    assert.ok(!noUuid.ok && /pc07 has no value for \{\{uuid\}\}/.test(noUuid.message));
    const noColumn = renderAnswerFiles({ dialect: 'preseed', text: 'x {{locale}}' }, { ...PC, fields: {} }, HOST, 4);
    assert.ok(!noColumn.ok && /pc07 has no value for \{\{locale\}\}: .*column "locale"/.test(noColumn.message));
    const unnamed = renderAnswerFiles({ dialect: 'preseed', text: 'x {{name}}' }, { ...PC, name: '' }, HOST, 4);
    assert.ok(!unnamed.ok && unnamed.machine === PC.mac && unnamed.variable === 'name');
    const twoLines = renderAnswerFiles({ dialect: 'preseed', text: 'x {{locale}}' }, { ...PC, fields: { locale: 'a\nd-i evil string 1' } }, HOST, 4);
    assert.ok(!twoLines.ok && /line break/.test(twoLines.message));
  });
});

describe('scripts', () => {
  const kernel: ScriptEntry = {
    id: 4,
    name: 'Debian installer',
    kind: 'kernel',
    arguments: 'console=ttyS0',
    files: [
      { arch: 'any', role: 'kernel', path: 'linux' },
      { arch: 'any', role: 'initrd', path: 'initrd.gz' },
    ],
  };
  test('iPXE: the installer’s kernel line carries the answer-file arguments after the entry’s own', () => {
    const r = rendered({ dialect: 'preseed', text: 'd-i a string {{name}}' });
    const script = buildIpxeScript(
      { action: 'entry', entry: { ...kernel, answers: { kernelArguments: r.kernelArguments, inject: [] } } },
      { httpBaseUrl: HOST.httpBaseUrl, architecture: 'bios' },
    );
    assert.match(script, new RegExp(`kernel \\S+/linux initrd=initrd.gz console=ttyS0 ${r.kernelArguments.replace(/[.?]/g, '\\$&')} \\|\\| goto failed`));
  });

  test('iPXE: a refused machine does not boot the installer; the screen says why', () => {
    const script = buildIpxeScript(
      { action: 'entry', entry: { ...kernel, answers: { refusal: 'pc07 has no value for {{uuid}}' } } },
      { httpBaseUrl: HOST.httpBaseUrl, architecture: 'bios' },
    );
    assert.match(script, /echo Bootbench: pc07 has no value for \{\{uuid\}\}\ngoto failed/);
    assert.doesNotMatch(script, /^kernel /m);
  });

  test('iPXE + wimboot: autounattend.xml and winpeshl.ini follow boot.wim', () => {
    const r = rendered({ dialect: 'autounattend', text: '<unattend></unattend>' });
    const wim: ScriptEntry = {
      id: 4,
      name: 'Windows',
      kind: 'wim',
      arguments: '',
      files: ['bcd', 'boot-sdi', 'wim'].map((role) => ({ arch: 'any', role, path: role })),
      answers: { kernelArguments: '', inject: r.inject },
    };
    const script = buildIpxeScript({ action: 'entry', entry: wim }, { httpBaseUrl: HOST.httpBaseUrl, architecture: 'x64', wimbootUrl: 'http://h/wimboot' });
    assert.match(
      script,
      new RegExp(
        `initrd --name boot.wim \\S+ boot.wim \\|\\| goto failed\ninitrd --name autounattend.xml ${FOLDER}/autounattend.xml autounattend.xml \\|\\| goto failed\n` +
          `initrd --name winpeshl.ini ${FOLDER}/winpeshl.ini winpeshl.ini \\|\\| goto failed\nboot`,
      ),
    );
  });

  test('GRUB: autoinstall’s ds=nocloud-net;s= is quoted (a bare ; would end the linux command)', () => {
    const r = rendered({ dialect: 'autoinstall', text: 'autoinstall:\n  version: 1\n' });
    const cfg = buildGrubConfig(
      { action: 'entry', entry: { ...kernel, answers: { kernelArguments: r.kernelArguments, inject: [] } } },
      { serverAddress: '192.0.2.1', httpPort: 8080 },
    );
    assert.match(cfg, new RegExp(`linux \\(tftp,192.0.2.1\\)/library/e4/linux console=ttyS0 autoinstall 'ds=nocloud-net;s=${FOLDER}/'\n`));
  });

  test('boot once ends when the installer reports it finished, for that entry only', () => {
    assert.equal(nextAssignmentAfterInstall({ entryId: 4, bootOnce: true }, 4).changed, true);
    assert.equal(nextAssignmentAfterInstall({ entryId: 4, bootOnce: true }, 5).changed, false);
    assert.equal(nextAssignmentAfterInstall({ entryId: 4, bootOnce: false }, 4).changed, false);
  });
});

describe('the store and the serving rule', () => {
  let n = 0;
  function setUp(): { store: Store; dataDir: string; entryId: number } {
    const dataDir = join(temp.dir, `data-${++n}`);
    const store = openStore(dataDir);
    const entry = store.entries.create({
      name: 'Debian installer',
      kind: 'kernel',
      files: [
        { arch: 'any', role: 'kernel', path: 'linux', size: 1, sha256: fakeSha256(1) },
        { arch: 'any', role: 'initrd', path: 'initrd.gz', size: 1, sha256: fakeSha256(2) },
      ],
    });
    const csv = ['mac,name,group,entry,Locale', `52:54:00:00:00:01,pc01,room-3,Debian installer,de_DE.UTF-8`, `52:54:00:00:00:02,pc02,room-3,,`].join('\n');
    assert.deepEqual(importMachinesCsv(store, csv).problems, []);
    store.machines.update(store.machines.findByMac('52:54:00:00:00:01')!.id, { bootOnce: true });
    store.machines.setGroup({ name: 'room-3', entryId: entry.id, notes: '' });
    writeAnswerTemplate(dataDir, entry, { dialect: 'preseed', text: 'd-i netcfg/get_hostname string {{name}}\nd-i x string {{locale}}\n' }, 1);
    return { store, dataDir, entryId: entry.id };
  }

  test('extra CSV columns are stored per machine and exported again', () => {
    const { store } = setUp();
    try {
      assert.deepEqual(machineFields(store).get(store.machines.findByMac('52:54:00:00:00:01')!.id), { locale: 'de_DE.UTF-8' });
      assert.deepEqual(machineFields(store).names(), ['locale']);
      assert.match(exportMachinesCsv(store), /^mac,uuid,name,group,entry,locale\r\n.*52:54:00:00:00:01,,pc01,room-3,Debian installer,de_DE\.UTF-8\r\n/s);
    } finally {
      store.close();
    }
  });

  test('the template is stored owner-only, and an entry number reused after a removal does not inherit it', () => {
    const { store, dataDir, entryId } = setUp();
    try {
      const path = join(dataDir, 'answers', `e${entryId}.json`);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(join(dataDir, 'answers')).mode & 0o777, 0o700);
      const entry = store.entries.get(entryId)!;
      assert.equal(readAnswerTemplate(dataDir, entry)?.dialect, 'preseed');
      assert.equal(readAnswerTemplate(dataDir, { id: entryId, createdAt: entry.createdAt + 1 }), undefined);
      assert.equal(removeAnswerTemplate(dataDir, entryId), true);
      assert.equal(readAnswerTemplate(dataDir, entry), undefined);
    } finally {
      store.close();
    }
  });

  test('refusals for an entry name each machine that boots it and lacks a value', () => {
    const { store, dataDir, entryId } = setUp();
    try {
      const refusals = answerRefusals({ store, dataDir, ...HOST }, store.entries.get(entryId)!);
      // pc02 boots it through its group and has an empty locale cell.
      assert.equal(refusals.length, 1, refusals.join('\n'));
      assert.match(refusals[0], /^pc02 has no value for \{\{locale\}\}/);
    } finally {
      store.close();
    }
  });

  test('served only to its own machine: another MAC, or an address the host never saw in DHCP, gets 404 with the reason', () => {
    const { store, dataDir, entryId } = setUp();
    try {
      const path = `/answers/e${entryId}/525400000001/preseed.cfg`;
      const own = answerRequest({ store, dataDir, ...HOST }, path, '52:54:00:00:00:01');
      assert.equal(own.status, 200);
      assert.ok(own.status === 200 && own.body.startsWith('d-i netcfg/get_hostname string pc01\nd-i x string de_DE.UTF-8\n'));
      const other = answerRequest({ store, dataDir, ...HOST }, path, '52:54:00:00:00:02');
      assert.equal(other.status, 404);
      assert.match(other.status === 404 ? other.reason : '', /asked by 52:54:00:00:00:02, not by pc01/);
      const unseen = answerRequest({ store, dataDir, ...HOST }, path, undefined);
      assert.match(unseen.status === 404 ? unseen.reason : '', /no DHCP exchange/);
      assert.equal(answerRequest({ store, dataDir, ...HOST }, `/answers/e${entryId}/525400000001/ks.cfg`, '52:54:00:00:00:01').status, 404);
      assert.equal(answerRequest({ store, dataDir, ...HOST }, `/answers/e${entryId}/525400000009/preseed.cfg`, '52:54:00:00:00:09').status, 404);
      // pc02 asks for its own file: it lacks a value, so it gets nothing either.
      const missing = answerRequest({ store, dataDir, ...HOST }, `/answers/e${entryId}/525400000002/preseed.cfg`, '52:54:00:00:00:02');
      assert.match(missing.status === 404 ? missing.reason : '', /pc02 has no value for \{\{locale\}\}/);
    } finally {
      store.close();
    }
  });

  test('iPXE script decoration: a machine outside the list is refused; a listed one gets its arguments', () => {
    const { store, dataDir, entryId } = setUp();
    try {
      const published: { type: string; fields: Record<string, unknown> }[] = [];
      const service = new AnswerFileService({
        store,
        dataDir,
        ...HOST,
        macForIp: () => undefined,
        localDiskEntry: () => store.entries.get(entryId)!,
        publish: (type, fields) => published.push({ type, fields: fields as Record<string, unknown> }),
      });
      const entry: ScriptEntry = { id: entryId, name: 'Debian installer', kind: 'kernel', arguments: '', files: [] };
      assert.deepEqual(service.scriptEntry(entry, '52:54:00:00:00:01').answers, {
        kernelArguments: `auto=true priority=critical url=http://192.0.2.1:8080/answers/e${entryId}/525400000001/preseed.cfg hostname=pc01`,
        inject: [],
      });
      const stranger = service.scriptEntry(entry, '52:54:00:00:00:99').answers;
      assert.ok(stranger && 'refusal' in stranger && /52:54:00:00:00:99 is not in the machine list/.test(stranger.refusal));
      const lacking = service.scriptEntry(entry, '52:54:00:00:00:02').answers;
      assert.ok(lacking && 'refusal' in lacking && /pc02 has no value for \{\{locale\}\}/.test(lacking.refusal));
      assert.equal(service.scriptEntry({ ...entry, id: entryId + 100 }, '52:54:00:00:00:01').answers, undefined);
      // Booting it, the refused PC is on the timeline with the reason.
      service.decorate({ action: 'entry', entry }, '52:54:00:00:00:02');
      assert.deepEqual(
        published.map((p) => [p.type, p.fields.mac, p.fields.machine]),
        [['answers.refused', '52:54:00:00:00:02', 'pc02']],
      );
      assert.match(String(published[0].fields.reason), /Debian installer was not booted: pc02 has no value for \{\{locale\}\}/);
    } finally {
      store.close();
    }
  });

  test('install states come from the machine’s latest install report', () => {
    const { store } = setUp();
    try {
      const pc01 = store.machines.findByMac('52:54:00:00:00:01')!;
      store.bootEvents.add({ machineId: pc01.id, time: 10, type: 'install.started', details: { hostname: 'pc01' } });
      assert.deepEqual(installStates(store).get(pc01.id), { state: 'installing', time: 10, hostname: 'pc01' });
      store.bootEvents.add({ machineId: pc01.id, time: 20, type: 'install.done' });
      assert.deepEqual(installStates(store).get(pc01.id), { state: 'installed', time: 20 });
    } finally {
      store.close();
    }
  });
});
