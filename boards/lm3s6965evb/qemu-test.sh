#!/usr/bin/env bash
# Boots the firmware on QEMU's lm3s6965evb and checks it with real clients
# (the shared test: ../common/board-test.sh, which says what it checks).
#
# Usage: ./qemu-test.sh [--static-address]   (from anywhere)
package=reversal-lm3s6965evb
target=thumbv7m-none-eabi
qemu=(qemu-system-arm -cpu cortex-m3 -M lm3s6965evb)
nic_model=stellaris
source "$(dirname "${BASH_SOURCE[0]}")/../common/board-test.sh"
