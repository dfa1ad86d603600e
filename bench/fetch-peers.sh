#!/bin/sh
# tftpd-hpa and atftpd conflict as Debian packages (both ship /usr/sbin/in.tftpd), and the
# tests may need either one installed. The bench therefore runs whichever is not installed
# from an unpacked copy under bench/results/peers/<package>/ (no maintainer scripts run, no
# service is started). Usage: sh bench/fetch-peers.sh
set -e
cd "$(dirname "$0")"
mkdir -p results/peers
cd results/peers
for pkg in atftpd tftpd-hpa; do
  [ -x "$pkg/usr/sbin/in.tftpd" ] && continue
  apt-get download "$pkg"
  dpkg-deb -x "$pkg"_*.deb "$pkg"
done
ls -d */usr/sbin
