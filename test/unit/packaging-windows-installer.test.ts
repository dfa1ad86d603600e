// The Windows installer's additions (build/windows/installer.nsh, reserved-ports.ps1): the
// firewall rules cover the ports the service host opens by default, the uninstaller removes
// every rule the installer adds, the reserved-port check looks at the same ports, and NSIS
// accepts the include (compiled with Debian's makensis into a small installer of its own;
// electron-builder's full template needs its downloaded NSIS build, which only CI has).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_PORTS, defaultServeConfig } from '../../main/host/config.js';

const root = resolve(import.meta.dirname, '../..');
const include = readFileSync(join(root, 'build/windows/installer.nsh'), 'utf8');
const portCheck = readFileSync(join(root, 'build/windows/reserved-ports.ps1'), 'utf8');

interface Rule {
  name: string;
  protocol: string;
  ports: string;
}

/** `!insertmacro bootbenchAddFirewallRule "NAME" "UDP" "67,69"` lines inside customInstall. */
function addedRules(): Rule[] {
  const install = /!macro customInstall\b([\s\S]*?)!macroend/.exec(include)?.[1] ?? '';
  return [...install.matchAll(/!insertmacro bootbenchAddFirewallRule "([^"]+)" "([^"]+)" "([^"]+)"/g)].map((m) => ({
    name: m[1],
    protocol: m[2],
    ports: m[3],
  }));
}

function covers(ports: string, port: number): boolean {
  return ports.split(',').some((part) => {
    const [low, high = low] = part.split('-').map(Number);
    return port >= low && port <= high;
  });
}

const hostPorts = [
  { protocol: 'UDP', port: DEFAULT_PORTS.dhcp },
  { protocol: 'UDP', port: DEFAULT_PORTS.tftp },
  { protocol: 'UDP', port: DEFAULT_PORTS.pxe },
  { protocol: 'TCP', port: defaultServeConfig('/nonexistent').httpPort },
];

test('the firewall rules cover every port the service host opens by default', () => {
  const rules = addedRules();
  assert.ok(rules.length > 0, 'customInstall adds rules');
  for (const { protocol, port } of hostPorts) {
    assert.ok(
      rules.some((r) => r.protocol === protocol && covers(r.ports, port)),
      `${protocol} ${port} is allowed (rules: ${rules.map((r) => `${r.protocol} ${r.ports}`).join('; ')})`,
    );
  }
  // The rules are for Bootbench's executable, not for every program on those ports.
  assert.match(include, /add rule [^']*program="\$INSTDIR\\\$\{APP_EXECUTABLE_FILENAME\}"/);
});

test('the uninstaller deletes every rule the installer adds', () => {
  const deleted = [...(/!macro bootbenchDeleteFirewallRules\b([\s\S]*?)!macroend/.exec(include)?.[1] ?? '').matchAll(/delete rule name="([^"]+)"/g)].map(
    (m) => m[1],
  );
  assert.deepEqual(
    deleted.sort(),
    addedRules()
      .map((r) => r.name)
      .sort(),
  );
  assert.match(/!macro customUnInstall\b([\s\S]*?)!macroend/.exec(include)?.[1] ?? '', /!insertmacro bootbenchDeleteFirewallRules/);
});

test('the reserved-port check looks at the ports the service host opens', () => {
  const checked = [...portCheck.matchAll(/Protocol = '(udp|tcp)'; Port = (\d+)/g)].map((m) => `${m[1].toUpperCase()} ${m[2]}`);
  assert.deepEqual(checked.sort(), hostPorts.map((p) => `${p.protocol} ${p.port}`).sort());
});

const makensisMissing = spawnSync('makensis', ['-VERSION']).status === 0 ? undefined : 'makensis is not installed (Debian package nsis)';

test('NSIS compiles the include inside an installer', { skip: makensisMissing ?? false }, () => {
  const work = mkdtempSync(join(tmpdir(), 'bb-nsis-'));
  try {
    const script = join(work, 'check.nsi');
    writeFileSync(
      script,
      [
        'Unicode true',
        '!include LogicLib.nsh',
        '!define APP_EXECUTABLE_FILENAME "Bootbench.exe"',
        `!define BUILD_RESOURCES_DIR "${join(root, 'build')}"`,
        `OutFile "${join(work, 'check.exe')}"`,
        'InstallDir "$PROGRAMFILES64\\Bootbench"',
        'RequestExecutionLevel admin',
        `!include "${join(root, 'build/windows/installer.nsh')}"`,
        'Section "install"',
        '  SetOutPath $INSTDIR',
        '  WriteUninstaller "$INSTDIR\\uninstall.exe"',
        '  !insertmacro customInstall',
        'SectionEnd',
        'Section "un.uninstall"',
        '  !insertmacro customUnInstall',
        'SectionEnd',
        '',
      ].join('\n'),
    );
    // -WX: a warning (unknown macro, missing file for File) fails the build like an error.
    const result = spawnSync('makensis', ['-V2', '-WX', script], { encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.ok(existsSync(join(work, 'check.exe')));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
