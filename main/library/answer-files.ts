// Answer files per machine: an entry's template (Debian preseed, Ubuntu autoinstall
// user-data, Fedora/RHEL kickstart, Windows autounattend.xml) rendered for one PC with the
// machine list's values and the host's, plus what the installer needs to find it (kernel
// arguments, or the files wimboot injects) and a callback that reports the install back.
// Pure functions of (template, machine, host): the HTTP route and the tests call them.
//
// Installer references:
//   preseed     https://www.debian.org/releases/bookworm/amd64/apbs02 (auto=true priority=critical url=,
//               preseed/early_command, preseed/late_command; `hostname` is netcfg/get_hostname's alias)
//   autoinstall https://canonical-subiquity.readthedocs-hosted.com/en/latest/reference/autoinstall-reference.html
//               (ds=nocloud-net;s=<dir>/ fetches user-data, meta-data, vendor-data; early-commands, late-commands)
//   kickstart   https://pykickstart.readthedocs.io (inst.ks=; several %pre and %post sections are allowed)
//   Windows     wimboot (https://ipxe.org/wimboot) puts injected files in X:\Windows\System32, where Setup
//               does not look for an answer file, so winpeshl.ini starts setup.exe /unattend: with it;
//               %WINDIR%\Setup\Scripts\SetupComplete.cmd runs once Setup has finished.
import { machineFieldName } from '../store/index.js';

export const ANSWER_DIALECTS = ['preseed', 'autoinstall', 'kickstart', 'autounattend'] as const;
export type AnswerDialect = (typeof ANSWER_DIALECTS)[number];

export const ANSWER_DIALECT_LABELS: Record<AnswerDialect, string> = {
  preseed: 'Debian preseed',
  autoinstall: 'Ubuntu autoinstall (user-data)',
  kickstart: 'Fedora/RHEL kickstart',
  autounattend: 'Windows autounattend.xml',
};

/** Values every machine has (some may be empty, which refuses a template that uses them). */
export const MACHINE_VARIABLES = ['name', 'mac', 'uuid', 'group'] as const;
/** Values of the host serving this PC. */
export const HOST_VARIABLES = ['server_address', 'http_base_url', 'answer_url', 'callback_url'] as const;

export interface AnswerTemplate {
  dialect: AnswerDialect;
  text: string;
}

/** A machine of the list, as rendering needs it. */
export interface AnswerMachine {
  name: string;
  /** The MAC the file is for (the one that boots). */
  mac: string;
  uuid?: string | null;
  group: string;
  /** Extra CSV columns, by variable name (fieldVariableName). */
  fields: Record<string, string>;
}

export interface AnswerHost {
  serverAddress: string;
  /** e.g. http://192.0.2.1:8080 */
  httpBaseUrl: string;
}

export interface RenderedAnswerFile {
  /** File name below the machine's answer URL. */
  name: string;
  contentType: string;
  body: string;
}

export interface AnswerRendering {
  ok: true;
  files: RenderedAnswerFile[];
  /** Appended to the entry's kernel command line (empty for Windows). */
  kernelArguments: string;
  /** Files wimboot adds to WinPE (Windows only): name and URL. */
  inject: { name: string; url: string }[];
}

export interface AnswerRefusal {
  ok: false;
  /** The machine's name, else its MAC. */
  machine: string;
  variable?: string;
  message: string;
}

const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
// Control characters would end a preseed or kickstart line, or a YAML scalar, early.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** A CSV column's variable name: lower case, runs of other characters as one underscore ("Root Password" -> root_password). */
export const fieldVariableName = machineFieldName;

/** Variable names a template uses, each once, in order of first use. */
export function templateVariables(text: string): string[] {
  return [...new Set([...text.matchAll(VARIABLE)].map((m) => m[1].toLowerCase()))];
}

const BUILT_IN = new Set<string>([...MACHINE_VARIABLES, ...HOST_VARIABLES]);

/** Variables a template may use, given the extra columns the machine list has. */
export function knownVariables(fieldNames: Iterable<string>): string[] {
  return [...MACHINE_VARIABLES, ...HOST_VARIABLES, ...[...new Set(fieldNames)].filter((f) => !BUILT_IN.has(f)).sort()];
}

/**
 * The template's own problems, before any machine: variables nobody provides, and (where the
 * dialect has a syntax we can check) a file the installer could not read. Empty when fine.
 */
export function checkTemplate(template: AnswerTemplate, fieldNames: Iterable<string>): string[] {
  const known = new Set(knownVariables(fieldNames));
  const problems = templateVariables(template.text)
    .filter((v) => !known.has(v))
    .map(
      (v) =>
        `The template uses {{${v}}}, which no machine provides: use one of ${[...known].map((k) => `{{${k}}}`).join(', ')}, ` +
        `or add a column "${v}" to the machine list (CSV) first.`,
    );
  if (template.text.trim() === '') problems.push('The template is empty: paste the answer file, with {{name}} and the like where each PC differs.');
  if (problems.length === 0) {
    // Rendered with placeholder values, so a syntax error shows when the template is saved.
    const sample: AnswerMachine = { name: 'pc01', mac: '52:54:00:00:00:01', uuid: '00000000-0000-4000-8000-000000000001', group: 'room', fields: {} };
    for (const f of fieldNames) sample.fields[f] = 'x';
    const rendered = renderAnswerFiles(template, sample, { serverAddress: '192.0.2.1', httpBaseUrl: 'http://192.0.2.1:8080' }, 1);
    if (!rendered.ok) problems.push(rendered.message);
  }
  return problems;
}

/** The machine's answer folder below the host's HTTP root: /answers/e<entry>/<mac without colons>. */
export function answerFolderPath(entryId: number, mac: string): string {
  return `/answers/e${entryId}/${mac.toLowerCase().replace(/[^0-9a-f]/g, '')}`;
}

/** The files each dialect serves from the machine's answer folder. */
export const ANSWER_FILE_NAMES: Record<AnswerDialect, string[]> = {
  preseed: ['preseed.cfg'],
  autoinstall: ['user-data', 'meta-data', 'vendor-data'],
  kickstart: ['ks.cfg'],
  autounattend: ['autounattend.xml', 'winpeshl.ini'],
};

/** Callback paths below the machine's answer folder: the installer started (with its hostname), and finished. */
export const CALLBACK_STARTED = 'started';
export const CALLBACK_INSTALLED = 'installed';

function who(machine: AnswerMachine): string {
  return machine.name || machine.mac;
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** A DNS label (RFC 1123): what the installers accept as a hostname. */
function isHostLabel(name: string): boolean {
  return /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(name);
}

/**
 * One machine's answer files, or why it cannot have them: a variable without a value for it
 * (an empty name, no UUID, an empty CSV cell), or a value that would break the file's lines.
 */
export function renderAnswerFiles(template: AnswerTemplate, machine: AnswerMachine, host: AnswerHost, entryId: number): AnswerRendering | AnswerRefusal {
  const base = host.httpBaseUrl.replace(/\/+$/, '');
  const folder = `${base}${answerFolderPath(entryId, machine.mac)}`;
  const values: Record<string, string | undefined> = {
    ...machine.fields,
    name: machine.name,
    mac: machine.mac,
    uuid: machine.uuid ?? '',
    group: machine.group,
    server_address: host.serverAddress,
    http_base_url: base,
    answer_url: `${folder}/${ANSWER_FILE_NAMES[template.dialect][0]}`,
    callback_url: `${folder}/${CALLBACK_INSTALLED}`,
  };
  for (const variable of templateVariables(template.text)) {
    const value = values[variable];
    if (value === undefined || value.trim() === '') {
      const what = (MACHINE_VARIABLES as readonly string[]).includes(variable) ? `its ${variable}` : `a value in the column "${variable}"`;
      return {
        ok: false,
        machine: who(machine),
        variable,
        message: `${who(machine)} has no value for {{${variable}}}: give the machine ${what} in the machine list, or take {{${variable}}} out of the template.`,
      };
    }
    if (CONTROL.test(value)) {
      return {
        ok: false,
        machine: who(machine),
        variable,
        message: `${who(machine)}: the value of {{${variable}}} contains a line break or control character, which would break the answer file: put it on one line.`,
      };
    }
  }
  const escape = template.dialect === 'autounattend' ? xmlEscape : (v: string) => v;
  const text = template.text.replace(VARIABLE, (_, name: string) => escape(values[name.toLowerCase()]!));
  const started = `${folder}/${CALLBACK_STARTED}`;
  const installed = `${folder}/${CALLBACK_INSTALLED}`;
  try {
    switch (template.dialect) {
      case 'preseed':
        return {
          ok: true,
          files: [{ name: 'preseed.cfg', contentType: 'text/plain; charset=utf-8', body: preseedWithCallbacks(text, started, installed) }],
          kernelArguments: [
            'auto=true',
            'priority=critical',
            `url=${folder}/preseed.cfg`,
            ...(isHostLabel(machine.name) ? [`hostname=${machine.name}`] : []),
          ].join(' '),
          inject: [],
        };
      case 'autoinstall':
        return {
          ok: true,
          files: [
            { name: 'user-data', contentType: 'text/yaml; charset=utf-8', body: autoinstallWithCallbacks(text, started, installed) },
            {
              name: 'meta-data',
              contentType: 'text/yaml; charset=utf-8',
              body: `instance-id: bootbench-${machine.mac.replace(/:/g, '')}\n${isHostLabel(machine.name) ? `local-hostname: ${machine.name}\n` : ''}`,
            },
            { name: 'vendor-data', contentType: 'text/yaml; charset=utf-8', body: '' },
          ],
          // The trailing slash matters: cloud-init appends the file names to s=.
          kernelArguments: `autoinstall ds=nocloud-net;s=${folder}/`,
          inject: [],
        };
      case 'kickstart':
        return {
          ok: true,
          files: [{ name: 'ks.cfg', contentType: 'text/plain; charset=utf-8', body: kickstartWithCallbacks(text, started, installed) }],
          kernelArguments: `inst.ks=${folder}/ks.cfg`,
          inject: [],
        };
      case 'autounattend':
        return {
          ok: true,
          files: [
            { name: 'autounattend.xml', contentType: 'application/xml; charset=utf-8', body: autounattendWithCallback(text, installed) },
            { name: 'winpeshl.ini', contentType: 'text/plain; charset=utf-8', body: WINPESHL_INI },
          ],
          kernelArguments: '',
          inject: [
            { name: 'autounattend.xml', url: `${folder}/autounattend.xml` },
            { name: 'winpeshl.ini', url: `${folder}/winpeshl.ini` },
          ],
        };
    }
  } catch (err) {
    return { ok: false, machine: who(machine), message: `${who(machine)}: ${(err as Error).message}` };
  }
}

// ---------------------------------------------------------------------------------------
// Callbacks, per dialect. Each installer reports twice: when it read its answers (with the
// hostname it runs under), and when it is done.
// ---------------------------------------------------------------------------------------

/** busybox wget in the Debian installer; the hostname is the one netcfg set (from `hostname=`). */
function wgetCommand(url: string): string {
  return `wget -q -O /dev/null "${url}"`;
}

const HOSTNAME_QUERY = '?hostname=$(cat /proc/sys/kernel/hostname)';

/**
 * preseed: a second `d-i preseed/late_command` line would replace the first (the last
 * value wins), so the callback joins the template's own command when there is one.
 */
function preseedWithCallbacks(text: string, started: string, installed: string): string {
  let out = appendPreseedCommand(text, 'preseed/early_command', wgetCommand(`${started}${HOSTNAME_QUERY}`));
  out = appendPreseedCommand(out, 'preseed/late_command', wgetCommand(installed));
  return out;
}

function appendPreseedCommand(text: string, question: string, command: string): string {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const pattern = new RegExp(`^\\s*d-i\\s+${question.replace('/', '\\/')}\\s+string(\\s|$)`);
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!pattern.test(lines[i])) continue;
    // A value continued with a trailing backslash ends on the first line without one.
    let end = i;
    while (end < lines.length - 1 && /\\\s*$/.test(lines[end])) end++;
    lines[end] = `${lines[end].replace(/\s*;?\s*$/, '')}; ${command}`;
    return lines.join('\n');
  }
  const body = lines.join('\n').replace(/\n*$/, '\n');
  return `${body}# Added by Bootbench: tell the host the installer ${question.endsWith('early_command') ? 'started' : 'finished'}\nd-i ${question} string ${command}\n`;
}

function kickstartWithCallbacks(text: string, started: string, installed: string): string {
  // curl is in Anaconda's environment; --nochroot runs it there, not in the new system.
  const body = text.replace(/\r\n/g, '\n').replace(/\n*$/, '\n');
  return (
    `${body}\n# Added by Bootbench: tell the host the installer started and finished\n` +
    `%pre\ncurl -s -o /dev/null "${started}?hostname=$(hostname)" || true\n%end\n\n` +
    `%post --nochroot\ncurl -s -o /dev/null "${installed}" || true\n%end\n`
  );
}

/**
 * autoinstall: the callbacks join the template's `early-commands` and `late-commands` lists
 * under `autoinstall:` (added when missing). Edited as text, line by line, so the
 * technician's comments and layout stay; only block style is understood there, and a
 * layout this cannot follow is refused with what to change.
 */
function autoinstallWithCallbacks(text: string, started: string, installed: string): string {
  const lines = text.replace(/\r\n/g, '\n').replace(/\n*$/, '').split('\n');
  if (lines.some((l) => l.trim() !== '' && l.match(/^\s*/)![0].includes('\t')))
    throw new Error('the user-data indents with tabs, which YAML does not allow: indent with spaces');
  const early = yamlQuoted(`wget -q -O /dev/null "${started}?hostname=$(hostname)" || true`);
  const late = yamlQuoted(`wget -q -O /dev/null "${installed}" || true`);
  const indentOf = (line: string) => line.match(/^ */)![0].length;
  const content = (line: string) => line.trim() !== '' && !line.trim().startsWith('#');
  let top = lines.findIndex((l) => /^autoinstall:\s*(#.*)?$/.test(l));
  if (top < 0) {
    if (lines.some((l) => /^autoinstall:/.test(l)))
      throw new Error('write "autoinstall:" as a block (its keys on the lines below, indented): fix the template');
    lines.push('autoinstall:', '  version: 1');
    top = lines.length - 2;
  }
  // The autoinstall block: the lines after it up to the next top-level key.
  let end = top + 1;
  while (end < lines.length && (!content(lines[end]) || indentOf(lines[end]) > 0)) end++;
  while (end > top + 1 && !content(lines[end - 1])) end--;
  const firstChild = lines.slice(top + 1, end).find(content);
  const childIndent = firstChild ? indentOf(firstChild) : 2;
  const pad = ' '.repeat(childIndent);
  const addTo = (key: string, command: string) => {
    const keyLine = lines.findIndex((l, i) => i > top && i < end && indentOf(l) === childIndent && new RegExp(`^ *${key}:\\s*(#.*)?$`).test(l));
    if (keyLine < 0) {
      if (lines.slice(top + 1, end).some((l) => indentOf(l) === childIndent && l.trim().startsWith(`${key}:`)))
        throw new Error(`write "${key}:" as a block list (one "- command" per line): fix the template`);
      lines.splice(end, 0, `${pad}${key}:`, `${pad}  - ${command}`);
      end += 2;
      return;
    }
    // The list's items: deeper lines, or "- " at the key's own indentation (both are YAML).
    let last = keyLine;
    let itemIndent = childIndent + 2;
    for (let i = keyLine + 1; i < end; i++) {
      if (!content(lines[i])) continue;
      const indent = indentOf(lines[i]);
      if (indent > childIndent || (indent === childIndent && lines[i].trim().startsWith('- '))) {
        if (lines[i].trim().startsWith('- ') && last === keyLine) itemIndent = indent;
        last = i;
      } else break;
    }
    lines.splice(last + 1, 0, `${' '.repeat(itemIndent)}- ${command}`);
    end++;
  };
  addTo('early-commands', early);
  addTo('late-commands', late);
  const body = lines.join('\n') + '\n';
  return /^#cloud-config\s*$/m.test(lines[0] ?? '') ? body : `#cloud-config\n${body}`;
}

/** A YAML double-quoted scalar (YAML 1.2 §7.3.1): backslash and quote escaped. */
function yamlQuoted(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Windows wants CRLF in its ini files. */
export const WINPESHL_INI = [
  '[LaunchApps]',
  '%SYSTEMROOT%\\System32\\wpeinit.exe',
  'X:\\sources\\setup.exe, /unattend:X:\\Windows\\System32\\autounattend.xml',
  '',
].join('\r\n');

/**
 * Windows: the specialize pass writes SetupComplete.cmd, which Setup runs once it has
 * finished; it calls the host back with PowerShell 2's WebClient (present since Windows 7).
 * The command joins the template's own specialize RunSynchronous list when it has one.
 */
function autounattendWithCallback(xml: string, installed: string): string {
  if (!/<unattend[\s>]/.test(xml) || !/<\/unattend>/.test(xml))
    throw new Error('the template is not an unattend file (no <unattend> element): fix the template');
  const arch = /processorArchitecture="([^"]+)"/.exec(xml)?.[1] ?? 'amd64';
  const script = `powershell -NoProfile -Command "(New-Object Net.WebClient).DownloadString('${installed}')"`;
  const command = `cmd /c mkdir %WINDIR%\\Setup\\Scripts &amp; echo ${xmlEscape(script)} &gt;&gt; %WINDIR%\\Setup\\Scripts\\SetupComplete.cmd`;
  const runCommand = (order: number) =>
    `<RunSynchronousCommand wcm:action="add"><Order>${order}</Order><Description>Bootbench: report the finished install</Description><Path>${command}</Path></RunSynchronousCommand>`;
  const component =
    `<component name="Microsoft-Windows-Deployment" processorArchitecture="${arch}" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS" ` +
    `xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State"><RunSynchronous>${runCommand(1)}</RunSynchronous></component>`;
  const specialize = /<settings\s+pass="specialize"\s*>([\s\S]*?)<\/settings>/.exec(xml);
  // Function replacements throughout: the template's text may hold `$&` and the like.
  if (!specialize) return xml.replace(/<\/unattend>/, () => `  <settings pass="specialize">${component}</settings>\n</unattend>`);
  const inner = specialize[1];
  const deployment = /<component\s[^>]*name="Microsoft-Windows-Deployment"[^>]*>([\s\S]*?)<\/component>/.exec(inner);
  let newInner: string;
  if (!deployment) newInner = `${inner}${component}`;
  else {
    const orders = [...deployment[1].matchAll(/<Order>\s*(\d+)\s*<\/Order>/g)].map((m) => Number(m[1]));
    const next = runCommand(Math.max(0, ...orders) + 1);
    const body = /<\/RunSynchronous>/.test(deployment[1])
      ? deployment[1].replace(/<\/RunSynchronous>/, () => `${next}</RunSynchronous>`)
      : `${deployment[1]}<RunSynchronous>${next}</RunSynchronous>`;
    newInner = inner.replace(deployment[0], () => deployment[0].replace(deployment[1], () => body));
  }
  return xml.replace(specialize[0], () => specialize[0].replace(inner, () => newInner));
}
