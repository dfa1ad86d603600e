#!/bin/bash
# .deb post-install (electron-builder fills in ${executable} and ${sanitizedProductName}).
# Besides the usual desktop-app chores, it gives the network capabilities to bootbench-host,
# the small launcher that runs the service host (build/linux/bootbench-host.c), and never to
# the Electron binary itself.
APP_DIR='/opt/${sanitizedProductName}'

# The command on PATH.
if type update-alternatives >/dev/null 2>&1; then
    if [ -L '/usr/bin/${executable}' ] && [ "$(readlink '/usr/bin/${executable}')" != '/etc/alternatives/${executable}' ]; then
        rm -f '/usr/bin/${executable}'
    fi
    update-alternatives --install '/usr/bin/${executable}' '${executable}' "$APP_DIR/${executable}" 100 \
        || ln -sf "$APP_DIR/${executable}" '/usr/bin/${executable}'
else
    ln -sf "$APP_DIR/${executable}" '/usr/bin/${executable}'
fi
ln -sf "$APP_DIR/bootbench-host" '/usr/bin/bootbench-host'

# Chromium's sandbox: the setuid helper only where unprivileged user namespaces do not work.
if [ -L /proc/self/ns/user ] && unshare --user true 2>/dev/null; then
    chmod 0755 "$APP_DIR/chrome-sandbox" || true
else
    chmod 4755 "$APP_DIR/chrome-sandbox" || true
fi

# Ports 67 (DHCP), 69 (TFTP) and 4011 (PXE) need CAP_NET_BIND_SERVICE below
# net.ipv4.ip_unprivileged_port_start; CAP_NET_RAW lets sockets be tied to one NIC on
# kernels before 5.7. Permitted set only ("=p"): the launcher raises them on purpose.
chown root:root "$APP_DIR/bootbench-host"
chmod 0755 "$APP_DIR/bootbench-host"
if command -v setcap >/dev/null 2>&1 && setcap 'cap_net_bind_service,cap_net_raw=p' "$APP_DIR/bootbench-host"; then
    echo "Bootbench: network capabilities granted to $APP_DIR/bootbench-host (not to the desktop app)."
else
    echo "Bootbench: could not set capabilities on $APP_DIR/bootbench-host (no setcap, or a file system without extended attributes)." >&2
    echo "Bootbench: the service host will need to be run as root; see the install guide." >&2
fi

if command -v update-mime-database >/dev/null 2>&1; then
    update-mime-database /usr/share/mime || true
fi
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database /usr/share/applications || true
fi

# Ubuntu 24.04+ restricts unprivileged user namespaces through AppArmor; electron-builder
# ships a profile that allows them for the app. Installed only where the running AppArmor
# understands it (older releases do not need it).
if apparmor_status --enabled >/dev/null 2>&1; then
    PROFILE_SOURCE="$APP_DIR/resources/apparmor-profile"
    PROFILE_TARGET='/etc/apparmor.d/${executable}'
    if [ -f "$PROFILE_SOURCE" ] && apparmor_parser --skip-kernel-load --debug "$PROFILE_SOURCE" >/dev/null 2>&1; then
        cp -f "$PROFILE_SOURCE" "$PROFILE_TARGET"
        if ! { [ -x /usr/bin/ischroot ] && /usr/bin/ischroot; }; then
            apparmor_parser --replace --write-cache --skip-read-cache "$PROFILE_TARGET" || true
        fi
    fi
fi
exit 0
