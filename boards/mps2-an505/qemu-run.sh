#!/usr/bin/env bash
# Cargo runner: boots the firmware ELF on QEMU's mps2-an505 and decodes its
# defmt log (written to QEMU's stdout through semihosting) with defmt-print.
# The user network is restricted (no outbound traffic), leases the board
# 10.0.2.15 by DHCP (the firmware's default; the build without the dhcp
# feature uses the same address) and forwards only
# 127.0.0.1:8888 (TCP and UDP) to the guest's port 8888. Restricted slirp
# drops every UDP datagram the guest sends, so UDP answers never come back
# this way (qemu-test.sh reaches UDP through a socket backend instead).
# Quit with Ctrl-A X (-nographic passes Ctrl-C to the guest).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 <firmware.elf>" >&2
    exit 2
fi
elf="$1"

qemu-system-arm -M mps2-an505 -nographic \
    -semihosting-config enable=on,target=native \
    -nic user,restrict=on,model=lan9118,hostfwd=tcp:127.0.0.1:8888-:8888,hostfwd=udp:127.0.0.1:8888-:8888 \
    -kernel "$elf" | defmt-print -e "$elf"
