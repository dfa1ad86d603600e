// Host firewall state for `bootbench doctor`: a firewall that drops the
// PXE clients' requests looks, from the bench, exactly like a dead server. Each operating
// system is asked through its own tool, whose output is parsed here by pure functions
// (tested with samples of each format); the command runner is injected. A tool that is
// missing, fails, or prints something unexpected gives an "unknown" finding, never a crash.
import { execFile } from 'node:child_process';

export interface FirewallFinding {
  level: 'ok' | 'warn' | 'error' | 'unknown';
  message: string;
  fix?: string;
}

export interface CommandOutput {
  /** Exit code; null when the command did not run to its end. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** The program does not exist here. */
  missing?: boolean;
  timedOut?: boolean;
}

export type CommandRunner = (file: string, args: string[]) => Promise<CommandOutput>;

export const runCommand: CommandRunner = (file, args) =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: 10_000, windowsHide: true, maxBuffer: 8 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      const err = error as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null;
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : null) : 0,
        stdout: String(stdout ?? ''),
        stderr: String(stderr ?? ''),
        missing: err?.code === 'ENOENT',
        timedOut: err?.killed === true,
      });
    });
  });

/** The UDP ports PXE clients must reach: DHCP / Proxy DHCP, TFTP, PXE boot server. */
export const PXE_UDP_PORTS = [
  { port: 67, service: 'DHCP' },
  { port: 69, service: 'TFTP' },
  { port: 4011, service: 'PXE boot server' },
] as const;

export interface FirewallCheckOptions {
  platform?: NodeJS.Platform;
  /** The NIC `serve` would use (Linux rules may name it). */
  interfaceName?: string;
  /** The program that would serve (Windows and macOS allow programs, not ports). */
  program?: string;
  /** Also check this TCP port (Linux rules; Windows and macOS allow the program as a whole). */
  httpPort?: number;
  run?: CommandRunner;
}

export async function checkFirewall(options: FirewallCheckOptions = {}): Promise<FirewallFinding[]> {
  const platform = options.platform ?? process.platform;
  const run = options.run ?? runCommand;
  const program = options.program ?? process.execPath;
  try {
    switch (platform) {
      case 'win32':
        return await checkWindowsFirewall(run, program);
      case 'darwin':
        return await checkMacFirewall(run, program);
      case 'linux':
        return await checkLinuxFirewall(run, options.interfaceName, options.httpPort);
      default:
        return [
          {
            level: 'unknown',
            message: `firewall: doctor cannot read the firewall on ${platform}`,
            fix: 'make sure UDP 67, 69 and 4011 may reach this machine on the bench NIC',
          },
        ];
    }
  } catch (err) {
    return [
      {
        level: 'unknown',
        message: `firewall: could not be checked (${(err as Error).message})`,
        fix: 'make sure UDP 67, 69 and 4011 may reach this machine on the bench NIC',
      },
    ];
  }
}

function describeFailure(what: string, out: CommandOutput): string {
  if (out.missing) return `${what} is not installed`;
  if (out.timedOut) return `${what} did not answer in time`;
  const text = (out.stderr || out.stdout).trim().split('\n')[0];
  return `${what} failed${out.code !== null ? ` (exit ${out.code})` : ''}${text ? `: ${text}` : ''}`;
}

// ---------------------------------------------------------------- Windows

/**
 * One PowerShell call: the profiles (NetSecurity module, Windows 8 / Server 2012 and later)
 * and the rules that name our program. Every value goes through a string, so enums come out
 * as their names ("True", "Block", "NotConfigured"), whatever the display language, and
 * ConvertTo-Json does not turn them into numbers.
 */
export function windowsFirewallScript(program: string): string {
  const path = program.replace(/'/g, "''");
  return [
    '$ErrorActionPreference = "Stop"',
    '$p = @(Get-NetFirewallProfile | ForEach-Object { [pscustomobject]@{ Name = "$($_.Name)"; Enabled = "$($_.Enabled)"; DefaultInboundAction = "$($_.DefaultInboundAction)"; AllowInboundRules = "$($_.AllowInboundRules)" } })',
    `$r = @(Get-NetFirewallApplicationFilter -Program '${path}' -ErrorAction SilentlyContinue | Get-NetFirewallRule | ForEach-Object { [pscustomobject]@{ Name = "$($_.DisplayName)"; Enabled = "$($_.Enabled)"; Direction = "$($_.Direction)"; Action = "$($_.Action)"; Profile = "$($_.Profile)" } })`,
    '[pscustomobject]@{ profiles = $p; rules = $r } | ConvertTo-Json -Depth 3 -Compress',
  ].join('; ');
}

export interface WindowsProfile {
  name: string;
  enabled: boolean;
  /** 'Block', 'Allow' or 'NotConfigured' (which means Block for inbound). */
  defaultInboundAction: string;
  /** False: "block all incoming connections, including those in the list of allowed apps". */
  allowInboundRules: boolean;
}

export interface WindowsRule {
  name: string;
  enabled: boolean;
  direction: string;
  action: string;
  profile: string;
}

const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined || value === null ? [] : [value]);
const truthy = (value: unknown) => value === true || String(value).toLowerCase() === 'true';

/** Parses windowsFirewallScript's JSON; undefined when it is not that. */
export function parseWindowsFirewallJson(text: string): { profiles: WindowsProfile[]; rules: WindowsRule[] } | undefined {
  let data: { profiles?: unknown; rules?: unknown };
  try {
    data = JSON.parse(text.trim());
  } catch {
    return undefined;
  }
  if (!data || typeof data !== 'object') return undefined;
  const profiles: WindowsProfile[] = [];
  for (const p of asList(data.profiles) as Record<string, unknown>[]) {
    if (!p || typeof p.Name !== 'string') return undefined;
    profiles.push({
      name: p.Name,
      enabled: truthy(p.Enabled),
      defaultInboundAction: String(p.DefaultInboundAction ?? 'NotConfigured'),
      // NotConfigured means the default, which is to honour the allow rules.
      allowInboundRules: String(p.AllowInboundRules ?? '').toLowerCase() !== 'false',
    });
  }
  if (profiles.length === 0) return undefined;
  const rules = (asList(data.rules) as Record<string, unknown>[])
    .filter((r) => r && typeof r === 'object')
    .map((r) => ({
      name: String(r.Name ?? ''),
      enabled: truthy(r.Enabled),
      direction: String(r.Direction ?? ''),
      action: String(r.Action ?? ''),
      profile: String(r.Profile ?? ''),
    }));
  return { profiles, rules };
}

/**
 * `netsh advfirewall show allprofiles state`, the fallback when PowerShell's module is
 * missing. Its words follow the display language, so only the English form is read:
 *
 *   Domain Profile Settings:
 *   ----------------------------------------------------------------------
 *   State                                 ON
 */
export function parseNetshProfilesState(text: string): { name: string; enabled: boolean }[] | undefined {
  const profiles: { name: string; enabled: boolean }[] = [];
  let current: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    const header = /^\s*(\w+) Profile Settings:\s*$/.exec(line);
    if (header) {
      current = header[1];
      continue;
    }
    const state = /^\s*State\s+(ON|OFF)\s*$/i.exec(line);
    if (state && current) {
      profiles.push({ name: current, enabled: state[1].toUpperCase() === 'ON' });
      current = undefined;
    }
  }
  return profiles.length ? profiles : undefined;
}

function windowsAddRuleFix(program: string): string {
  return `as Administrator: netsh advfirewall firewall add rule name="Bootbench" dir=in action=allow program="${program}" enable=yes profile=any (or reinstall Bootbench, whose installer adds this rule)`;
}

async function checkWindowsFirewall(run: CommandRunner, program: string): Promise<FirewallFinding[]> {
  const ps = await run('powershell.exe', ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-Command', windowsFirewallScript(program)]);
  const parsed = ps.code === 0 ? parseWindowsFirewallJson(ps.stdout) : undefined;
  if (parsed) return describeWindowsFirewall(parsed, program);
  const netsh = await run('netsh', ['advfirewall', 'show', 'allprofiles', 'state']);
  const states = netsh.code === 0 ? parseNetshProfilesState(netsh.stdout) : undefined;
  if (states) {
    const on = states.filter((s) => s.enabled).map((s) => s.name);
    if (on.length === 0) return [{ level: 'ok', message: `firewall: Windows Firewall is off (${states.map((s) => s.name).join(', ')} profiles)` }];
    return [
      {
        level: 'warn',
        message: `firewall: Windows Firewall is on for the ${on.join(', ')} profile${on.length > 1 ? 's' : ''}; whether it lets ${program} receive PXE requests could not be read (${describeFailure('PowerShell', ps)})`,
        fix: windowsAddRuleFix(program),
      },
    ];
  }
  return [
    {
      level: 'unknown',
      message: `firewall: the Windows Firewall state could not be read (${describeFailure('PowerShell', ps)}; ${netsh.code === 0 ? 'netsh printed an unexpected format' : describeFailure('netsh', netsh)})`,
      fix: `open Windows Security > Firewall & network protection and allow ${program} on the bench network`,
    },
  ];
}

/** Findings from the profiles and our program's rules. Pure, for the tests. */
export function describeWindowsFirewall(state: { profiles: WindowsProfile[]; rules: WindowsRule[] }, program: string): FirewallFinding[] {
  const enabled = state.profiles.filter((p) => p.enabled);
  if (enabled.length === 0) return [{ level: 'ok', message: `firewall: Windows Firewall is off (${state.profiles.map((p) => p.name).join(', ')} profiles)` }];
  const findings: FirewallFinding[] = [];
  const names = enabled.map((p) => p.name).join(', ');
  for (const p of enabled.filter((x) => !x.allowInboundRules)) {
    findings.push({
      level: 'error',
      message: `firewall: Windows Firewall blocks every incoming connection on the ${p.name} profile, allowed apps included: PXE clients on a ${p.name} network get no answer`,
      fix: `as Administrator: Set-NetFirewallProfile -Profile ${p.name} -AllowInboundRules True (Windows Security > Firewall > ${p.name} network: clear "Blocks all incoming connections")`,
    });
  }
  const inbound = state.rules.filter((r) => r.enabled && /^inbound$/i.test(r.direction));
  const blocking = inbound.filter((r) => /^block$/i.test(r.action));
  const allowing = inbound.filter((r) => /^allow$/i.test(r.action));
  if (blocking.length) {
    // Block rules win over allow rules in Windows Firewall.
    findings.push({
      level: 'error',
      message: `firewall: Windows Firewall rule${blocking.length > 1 ? 's' : ''} ${blocking.map((r) => `"${r.name}"`).join(', ')} block${blocking.length > 1 ? '' : 's'} ${program} from receiving`,
      fix: `as Administrator: ${blocking.map((r) => `Remove-NetFirewallRule -DisplayName "${r.name}"`).join('; ')}`,
    });
  } else if (allowing.length) {
    const defaultAllows = enabled.every((p) => /^allow$/i.test(p.defaultInboundAction));
    findings.push({
      level: 'ok',
      message: `firewall: Windows Firewall is on (${names}) and ${defaultAllows ? 'allows inbound by default' : `rule "${allowing[0].name}" lets ${program} receive (${allowing[0].profile})`}`,
    });
  } else if (enabled.every((p) => /^allow$/i.test(p.defaultInboundAction))) {
    findings.push({ level: 'ok', message: `firewall: Windows Firewall is on (${names}) and allows inbound by default` });
  } else {
    findings.push({
      level: 'warn',
      message: `firewall: Windows Firewall is on (${names}) and no rule lets ${program} receive: PXE clients' DHCP (67), TFTP (69) and boot server (4011) requests will be dropped`,
      fix: windowsAddRuleFix(program),
    });
  }
  return findings;
}

// ---------------------------------------------------------------- macOS

export const SOCKETFILTERFW = '/usr/libexec/ApplicationFirewall/socketfilterfw';

/**
 * `socketfilterfw --getglobalstate`: "Firewall is disabled. (State = 0)", "Firewall is
 * enabled. (State = 1)", and for block-all either "Firewall is enabled. (State = 2)" or
 * (newer macOS) "Firewall is blocking all non-essential incoming connections. (State = 2)".
 */
export function parseMacGlobalState(text: string): 0 | 1 | 2 | undefined {
  const m = /\(State = ([0-2])\)/.exec(text);
  return m ? (Number(m[1]) as 0 | 1 | 2) : undefined;
}

/**
 * `socketfilterfw --getblockall`: "Firewall has block all state set to enabled." /
 * "... disabled." (newer), "Block all ENABLED!" / "Block all DISABLED!" (older), or a line
 * ending in "incoming connections" when it is on.
 */
export function parseMacBlockAll(text: string): boolean | undefined {
  const t = text.toLowerCase();
  if (!t.includes('block')) return undefined;
  if (/\bdisabled\b/.test(t)) return false;
  if (/\benabled\b/.test(t) || /incoming connections/.test(t)) return true;
  return undefined;
}

/**
 * `socketfilterfw --getappblocked PATH`: "... is permitted ..." / "... not blocked ..."
 * when allowed, "... is blocked ..." when not; anything else (the program is not in the
 * list) is undefined.
 */
export function parseMacAppBlocked(text: string): 'allowed' | 'blocked' | undefined {
  const t = text.toLowerCase();
  if (/\bpermitted\b|not blocked/.test(t)) return 'allowed';
  if (/\bblocked\b/.test(t)) return 'blocked';
  return undefined;
}

async function checkMacFirewall(run: CommandRunner, program: string): Promise<FirewallFinding[]> {
  const global = await run(SOCKETFILTERFW, ['--getglobalstate']);
  const state = parseMacGlobalState(global.stdout);
  if (state === undefined) {
    return [
      {
        level: 'unknown',
        message: `firewall: the macOS firewall state could not be read (${global.code === 0 ? `unexpected output "${global.stdout.trim().slice(0, 80)}"` : describeFailure('socketfilterfw', global)})`,
        fix: 'check System Settings > Network > Firewall, and allow Bootbench there',
      },
    ];
  }
  if (state === 0) return [{ level: 'ok', message: 'firewall: the macOS firewall is off' }];
  const blockAll = state === 2 || parseMacBlockAll((await run(SOCKETFILTERFW, ['--getblockall'])).stdout) === true;
  if (blockAll) {
    return [
      {
        level: 'error',
        message: 'firewall: the macOS firewall blocks all incoming connections: PXE clients get no answer',
        fix: `System Settings > Network > Firewall > Options: turn off "Block all incoming connections" (or: sudo ${SOCKETFILTERFW} --setblockall off)`,
      },
    ];
  }
  const app = await run(SOCKETFILTERFW, ['--getappblocked', program]);
  const verdict = parseMacAppBlocked(app.stdout);
  const allowFix = `sudo ${SOCKETFILTERFW} --add "${program}" && sudo ${SOCKETFILTERFW} --unblockapp "${program}"`;
  if (verdict === 'allowed') return [{ level: 'ok', message: `firewall: the macOS firewall is on and lets ${program} receive` }];
  if (verdict === 'blocked') {
    return [
      {
        level: 'error',
        message: `firewall: the macOS firewall blocks incoming connections to ${program}: PXE clients get no answer`,
        fix: `sudo ${SOCKETFILTERFW} --unblockapp "${program}" (or System Settings > Network > Firewall > Options)`,
      },
    ];
  }
  return [
    {
      level: 'warn',
      message: `firewall: the macOS firewall is on and ${program} is not in its list; macOS asks whether it may accept incoming connections when it first listens, and if nobody answers "Allow" PXE clients get no answer`,
      fix: allowFix,
    },
  ];
}

// ---------------------------------------------------------------- Linux (nftables)

type NftObject = Record<string, any>;
type Verdict = 'accept' | 'drop' | 'reject';

interface PacketFacts {
  protocol: 'udp' | 'tcp';
  port: number;
  interfaceName?: string;
}

interface Decision {
  verdict: Verdict;
  where: string;
  /** Rules doctor could not evaluate that came before the decision (they might accept). */
  uncertain: string[];
}

/**
 * What the input hooks of an `nft -j list ruleset` do with a new UDP datagram to `port`
 * arriving on the NIC (a DISCOVER from 0.0.0.0 or a TFTP read request). Each base chain
 * with hook input is walked in order, following jump/goto; a rule counts when every match
 * in it is one doctor can decide (protocol, UDP port, input interface, ct state); a rule
 * with other matches (addresses, marks, named sets) is passed over and remembered, since
 * it might accept. Returns the first drop/reject found, or undefined when every table
 * accepts the packet.
 */
export function nftInputVerdict(ruleset: NftObject, facts: PacketFacts): Decision | undefined {
  const items: NftObject[] = Array.isArray(ruleset?.nftables) ? ruleset.nftables : [];
  const chains = items.map((i) => i.chain).filter(Boolean) as NftObject[];
  const rules = items.map((i) => i.rule).filter(Boolean) as NftObject[];
  const rulesOf = (family: string, table: string, chain: string) => rules.filter((r) => r.family === family && r.table === table && r.chain === chain);
  for (const base of chains.filter((c) => c.hook === 'input' && (c.family === 'inet' || c.family === 'ip'))) {
    const uncertain: string[] = [];
    const walk = (name: string, depth: number): { verdict: Verdict; where: string } | 'return' | undefined => {
      if (depth > 16) return undefined; // a loop in the rules; the kernel refuses those anyway
      for (const rule of rulesOf(base.family, base.table, name)) {
        const where = `rule ${rule.handle} in chain ${name} of table ${base.family} ${base.table}`;
        const match = ruleMatches(rule.expr ?? [], facts);
        const action = ruleAction(rule.expr ?? []);
        if (match === 'no' || !action) continue;
        if (match === 'maybe') {
          if (action.kind === 'accept' || action.kind === 'jump' || action.kind === 'goto') uncertain.push(where);
          continue;
        }
        if (action.kind === 'return') return 'return';
        if (action.kind === 'jump' || action.kind === 'goto') {
          const inner = walk(action.target, depth + 1);
          if (inner && inner !== 'return') return inner;
          if (action.kind === 'goto') return 'return';
          continue;
        }
        return { verdict: action.kind, where };
      }
      return undefined;
    };
    const result = walk(base.name, 0);
    const decided =
      result && result !== 'return'
        ? result
        : { verdict: String(base.policy ?? 'accept') as Verdict, where: `the policy of chain ${base.name} in table ${base.family} ${base.table}` };
    if (decided.verdict !== 'accept') return { ...decided, uncertain };
  }
  return undefined;
}

type Match = 'yes' | 'no' | 'maybe';

const PROTOCOL_NUMBERS = { tcp: 6, udp: 17 } as const;

function ruleMatches(expr: NftObject[], facts: PacketFacts): Match {
  let result: Match = 'yes';
  for (const e of expr) {
    if (e.match) {
      const m = matchOne(e.match, facts);
      if (m === 'no') return 'no';
      if (m === 'maybe') result = 'maybe';
    } else if (!('counter' in e || 'log' in e || 'accept' in e || 'drop' in e || 'reject' in e || 'jump' in e || 'goto' in e || 'return' in e)) {
      result = 'maybe'; // limit, quota, xt (iptables-nft compat), meters...
    }
  }
  return result;
}

function matchOne(m: NftObject, facts: PacketFacts): Match {
  const negate = m.op === '!=';
  const left = m.left ?? {};
  const flip = (r: Match): Match => (r === 'maybe' || !negate ? r : r === 'yes' ? 'no' : 'yes');
  if (left.payload) {
    const { protocol, field } = left.payload;
    if (protocol === facts.protocol && field === 'dport') return flip(valueMatches(m.right, facts.port));
    if (protocol === facts.protocol) return 'maybe';
    if (protocol === 'ip' && field === 'protocol') return flip(valueMatches(m.right, facts.protocol, PROTOCOL_NUMBERS[facts.protocol]));
    // An IPv4 UDP (or TCP) packet has none of these other headers.
    if (['tcp', 'udp', 'sctp', 'dccp', 'icmp', 'ip6', 'icmpv6', 'udplite'].includes(protocol)) return 'no';
    return 'maybe';
  }
  if (left.meta) {
    const key = left.meta.key;
    if (key === 'l4proto') return flip(valueMatches(m.right, facts.protocol, PROTOCOL_NUMBERS[facts.protocol]));
    if (key === 'nfproto') return flip(valueMatches(m.right, 'ipv4', 2));
    if ((key === 'iifname' || key === 'iif') && facts.interfaceName) return flip(valueMatches(m.right, facts.interfaceName));
    return 'maybe';
  }
  if (left.ct?.key === 'state') {
    // A DISCOVER or a read request starts a conversation: conntrack calls it "new".
    return flip(valueMatches(m.right, 'new'));
  }
  return 'maybe';
}

function valueMatches(right: unknown, ...wanted: (string | number)[]): Match {
  if (typeof right === 'string' && right.startsWith('@')) return 'maybe'; // a named set
  const values: unknown[] = Array.isArray(right)
    ? right
    : right && typeof right === 'object' && 'set' in (right as object)
      ? asList((right as { set: unknown }).set)
      : [right];
  let unsure = false;
  for (const v of values) {
    if (typeof v === 'number' || typeof v === 'string') {
      if (wanted.some((w) => w === v || (typeof w === 'string' && typeof v === 'string' && wildcard(v, w)))) return 'yes';
    } else if (v && typeof v === 'object' && 'range' in v) {
      const [lo, hi] = (v as { range: [number, number] }).range;
      if (wanted.some((w) => typeof w === 'number' && w >= lo && w <= hi)) return 'yes';
    } else {
      unsure = true;
    }
  }
  return unsure ? 'maybe' : 'no';
}

/** nft interface names may end in `*` ("eth*"). */
function wildcard(pattern: string, value: string): boolean {
  return pattern.endsWith('*') ? value.startsWith(pattern.slice(0, -1)) : false;
}

function ruleAction(expr: NftObject[]): { kind: Verdict | 'return' } | { kind: 'jump' | 'goto'; target: string } | undefined {
  for (const e of expr) {
    if ('accept' in e) return { kind: 'accept' };
    if ('drop' in e) return { kind: 'drop' };
    if ('reject' in e) return { kind: 'reject' };
    if ('return' in e) return { kind: 'return' };
    if (e.jump?.target) return { kind: 'jump', target: e.jump.target };
    if (e.goto?.target) return { kind: 'goto', target: e.goto.target };
  }
  return undefined;
}

/**
 * Findings from a parsed `nft -j list ruleset`: one for the PXE UDP ports and, when
 * `httpPort` is given, one for HTTP (iPXE scripts, UEFI HTTP boot). Pure, for the tests.
 */
export function describeNftRuleset(ruleset: NftObject, interfaceName: string | undefined, httpPort?: number): FirewallFinding[] {
  const findings = describeNftPorts(ruleset, interfaceName, 'udp', [...PXE_UDP_PORTS]);
  if (httpPort !== undefined) {
    const http = describeNftPorts(ruleset, interfaceName, 'tcp', [{ port: httpPort, service: 'HTTP' }]);
    if (http[0].level !== 'ok') findings.push(...http);
  }
  return findings;
}

function describeNftPorts(
  ruleset: NftObject,
  interfaceName: string | undefined,
  protocol: 'udp' | 'tcp',
  ports: { port: number; service: string }[],
): FirewallFinding[] {
  const nic = interfaceName ?? 'the bench NIC';
  const blocked = ports.map((p) => ({ ...p, decision: nftInputVerdict(ruleset, { protocol, port: p.port, interfaceName }) })).filter((p) => p.decision);
  const list = ports.map((p) => p.port).join(', ');
  if (blocked.length === 0)
    return [{ level: 'ok', message: `firewall: nftables lets ${protocol.toUpperCase()} ${list.replace(/, (\d+)$/, ' and $1')} in on ${nic}` }];
  const first = blocked[0].decision!;
  const names = blocked.map((p) => `${p.port} (${p.service})`).join(', ');
  const table = /table (\S+ \S+)$/.exec(first.where)?.[1] ?? 'inet filter';
  const chain = /chain (\S+)/.exec(first.where)?.[1] ?? 'input';
  const uncertain = [...new Set(blocked.flatMap((p) => p.decision!.uncertain))];
  return [
    {
      level: uncertain.length ? 'warn' : 'error',
      message:
        `firewall: nftables ${first.verdict === 'reject' ? 'rejects' : 'drops'} ${protocol.toUpperCase()} ${names} arriving on ${nic}: ${first.where}` +
        (uncertain.length ? ` (unless ${uncertain.join(', ')}, which doctor cannot evaluate, accepts them)` : ''),
      fix: `as root: nft insert rule ${table} ${chain} iifname "${interfaceName ?? 'NIC'}" ${protocol} dport { ${list} } accept (and the same in your firewall's saved configuration)`,
    },
  ];
}

async function checkLinuxFirewall(run: CommandRunner, interfaceName: string | undefined, httpPort: number | undefined): Promise<FirewallFinding[]> {
  const out = await run('nft', ['-j', 'list', 'ruleset']);
  if (out.code !== 0) {
    const denied = /permission|not permitted/i.test(out.stderr);
    return [
      {
        level: 'unknown',
        message: `firewall: nftables rules not checked (${denied ? 'reading them needs root' : describeFailure('nft', out)})`,
        fix: denied ? 'run doctor as root to check the firewall rules' : 'make sure no firewall rule drops UDP 67, 69 and 4011 arriving on the bench NIC',
      },
    ];
  }
  if (out.stdout.trim() === '') return [{ level: 'ok', message: 'firewall: no nftables rules' }];
  let ruleset: NftObject;
  try {
    ruleset = JSON.parse(out.stdout);
  } catch {
    return [
      {
        level: 'unknown',
        message: 'firewall: nft printed something that is not JSON; rules not checked',
        fix: 'make sure no firewall rule drops UDP 67, 69 and 4011 arriving on the bench NIC',
      },
    ];
  }
  if (!Array.isArray(ruleset?.nftables))
    return [
      {
        level: 'unknown',
        message: 'firewall: unexpected nft JSON; rules not checked',
        fix: 'make sure no firewall rule drops UDP 67, 69 and 4011 arriving on the bench NIC',
      },
    ];
  return describeNftRuleset(ruleset, interfaceName, httpPort);
}
