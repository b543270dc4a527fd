#!/usr/bin/env bash
# Boots the firmware on QEMU's mps2-an505 and checks it with real clients
# (the shared test: ../common/board-test.sh, which says what it checks).
#
# Usage: ./qemu-test.sh [--static-address]   (from anywhere)
package=reversal-mps2-an505
target=thumbv8m.main-none-eabihf
qemu=(qemu-system-arm -M mps2-an505)
nic_model=lan9118
source "$(dirname "${BASH_SOURCE[0]}")/../common/board-test.sh"
