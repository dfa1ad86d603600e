# Run by the Bootbench installer (build/windows/installer.nsh): prints, in plain words, each
# port Bootbench needs that Windows will not let it open, with the fix; prints nothing when
# all is well. Read-only: it changes nothing.
$ErrorActionPreference = 'SilentlyContinue'
$needed = @(
  @{ Protocol = 'udp'; Port = 67;   Service = 'DHCP' },
  @{ Protocol = 'udp'; Port = 69;   Service = 'TFTP' },
  @{ Protocol = 'udp'; Port = 4011; Service = 'PXE boot server' },
  @{ Protocol = 'tcp'; Port = 8080; Service = 'HTTP boot' }
)

function Get-ExcludedRanges([string]$protocol) {
  # "netsh interface ipv4 show excludedportrange protocol=udp" lists "start  end" pairs,
  # the ranges winnat (Hyper-V, WSL 2, Docker) or an administrator reserved.
  netsh interface ipv4 show excludedportrange protocol=$protocol |
    ForEach-Object { if ($_ -match '^\s*(\d+)\s+(\d+)') { ,@([int]$Matches[1], [int]$Matches[2]) } }
}

$ranges = @{ udp = @(Get-ExcludedRanges 'udp'); tcp = @(Get-ExcludedRanges 'tcp') }
foreach ($n in $needed) {
  foreach ($r in $ranges[$n.Protocol]) {
    if ($n.Port -ge $r[0] -and $n.Port -le $r[1]) {
      "- $($n.Protocol.ToUpper()) $($n.Port) ($($n.Service)) is reserved by Windows (range $($r[0])-$($r[1]), usually winnat for Hyper-V, WSL 2 or Docker). Fix: in an administrator prompt run 'net stop winnat', start Bootbench once, then 'net start winnat'; or reserve the port for Bootbench with 'netsh int ipv4 add excludedportrange protocol=$($n.Protocol) startport=$($n.Port) numberofports=1' before winnat starts."
    }
  }
}

$dhcp = Get-NetUDPEndpoint -LocalPort 67
if ($dhcp) {
  $owners = $dhcp | ForEach-Object { (Get-Process -Id $_.OwningProcess).ProcessName } | Sort-Object -Unique
  $ics = Get-Service -Name SharedAccess
  $hint = if ($ics -and $ics.Status -eq 'Running') { "Internet Connection Sharing (service SharedAccess, also used by Hyper-V's Default Switch) is running: stop it with 'net stop SharedAccess' while Bootbench serves, or use Bootbench's proxy mode on a network that already has a DHCP server." } else { 'Stop that DHCP server while Bootbench serves, or run Bootbench on another computer.' }
  "- UDP 67 (DHCP) is already open by: $($owners -join ', '). $hint"
}
exit 0
