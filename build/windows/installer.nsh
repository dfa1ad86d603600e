; Included by electron-builder's NSIS installer (electron-builder.yml, nsis.include).
; The installer runs elevated (perMachine), so this is where the firewall rules go, once, with
; the consent the UAC prompt already asked for. Rules are tied to Bootbench.exe: the service
; host runs in its main process. All profiles: an isolated bench switch has no internet, so
; Windows files it as an "Unidentified network" under the Public profile.
;
;   UDP 67 DHCP / proxy DHCP, 69 TFTP, 4011 PXE boot server
;   UDP 49152-65535 TFTP transfers: each one answers from a new ephemeral port (RFC 1350
;                   section 4), taken from Windows' dynamic range
;   TCP 80, 8080    HTTP boot (8080 is the default --http-port; 80 when the user picks it)

!macro bootbenchDeleteFirewallRules
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="Bootbench DHCP, TFTP and PXE (UDP)"'
  Pop $0
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="Bootbench TFTP transfers (UDP)"'
  Pop $0
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="Bootbench HTTP boot (TCP)"'
  Pop $0
!macroend

!macro bootbenchAddFirewallRule NAME PROTOCOL PORTS
  nsExec::ExecToLog 'netsh advfirewall firewall add rule name="${NAME}" dir=in action=allow protocol=${PROTOCOL} localport=${PORTS} program="$INSTDIR\${APP_EXECUTABLE_FILENAME}" profile=any enable=yes'
  Pop $0
  ${if} $0 != 0
    StrCpy $R9 "$R9$\r$\n  ${NAME}: ${PROTOCOL} ${PORTS}"
  ${endIf}
!macroend

!macro customInstall
  StrCpy $R9 ""
  ; An update runs the old uninstaller first, which removed them; a repair finds them: start clean.
  !insertmacro bootbenchDeleteFirewallRules
  !insertmacro bootbenchAddFirewallRule "Bootbench DHCP, TFTP and PXE (UDP)" "UDP" "67,69,4011"
  !insertmacro bootbenchAddFirewallRule "Bootbench TFTP transfers (UDP)" "UDP" "49152-65535"
  !insertmacro bootbenchAddFirewallRule "Bootbench HTTP boot (TCP)" "TCP" "80,8080"
  ${if} $R9 != ""
    MessageBox MB_OK|MB_ICONEXCLAMATION "Bootbench could not add these Windows Firewall rules:$R9$\r$\n$\r$\nPXE clients will not reach Bootbench until they exist. Another firewall product, or a policy set by your organisation, may manage the firewall; see the install guide." /SD IDOK
  ${endIf}

  ; Ports Windows keeps for itself: Hyper-V, WSL 2 and Docker make winnat reserve port ranges,
  ; and Internet Connection Sharing (also behind Hyper-V's Default Switch) holds UDP 67.
  ; The script prints one line per problem, nothing when all is well.
  InitPluginsDir
  File "/oname=$PLUGINSDIR\reserved-ports.ps1" "${BUILD_RESOURCES_DIR}\windows\reserved-ports.ps1"
  nsExec::ExecToStack 'powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File "$PLUGINSDIR\reserved-ports.ps1"'
  Pop $0
  Pop $1
  ${if} $0 == 0
  ${andIf} $1 != ""
    MessageBox MB_OK|MB_ICONINFORMATION "Bootbench is installed, but Windows is keeping ports it needs:$\r$\n$\r$\n$1$\r$\nBootbench will say the same on its Start screen until this is fixed." /SD IDOK
  ${endIf}
!macroend

!macro customUnInstall
  ; On an update the new installer adds them back right after.
  !insertmacro bootbenchDeleteFirewallRules
!macroend
