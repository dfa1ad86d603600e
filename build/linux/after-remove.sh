#!/bin/bash
# .deb post-remove: undo what after-install.sh did outside /opt (dpkg removes /opt itself,
# and the capabilities go with the file). The user's data folder is left alone.
APP_DIR='/opt/${sanitizedProductName}'

if type update-alternatives >/dev/null 2>&1; then
    update-alternatives --remove '${executable}' "$APP_DIR/${executable}" || true
else
    rm -f '/usr/bin/${executable}'
fi
if [ -L /usr/bin/bootbench-host ] && [ "$(readlink /usr/bin/bootbench-host)" = "$APP_DIR/bootbench-host" ]; then
    rm -f /usr/bin/bootbench-host
fi

PROFILE='/etc/apparmor.d/${executable}'
if [ -f "$PROFILE" ]; then
    if apparmor_status --enabled >/dev/null 2>&1 && ! { [ -x /usr/bin/ischroot ] && /usr/bin/ischroot; }; then
        apparmor_parser --remove "$PROFILE" || true
    fi
    rm -f "$PROFILE"
fi
exit 0
