#!/usr/bin/env bash
# Whole-firmware test on QEMU's lm3s6965evb: builds the release firmware,
# boots it with a restricted user network that forwards a free TCP port on
# 127.0.0.1 to the guest's port 8888 (UDP: see the QEMU command), waits for the firmware's
# "listening" log line, then runs qemu-checks.py (the SPEC's behaviours, with
# real clients on 127.0.0.1: Python sockets, nc and the seed client).
#
# Usage: ./qemu-test.sh            (from anywhere)
# Needs: qemu-system-arm, defmt-print (cargo install defmt-print), python3,
#        nc (netcat-openbsd).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

boot_timeout=60
elf="$here/target/thumbv7m-none-eabi/release/reversal-lm3s6965evb"

for tool in qemu-system-arm defmt-print python3 nc; do
    if ! command -v "$tool" >/dev/null; then
        echo "qemu-test: missing tool: $tool" >&2
        exit 1
    fi
done
# `nc -N` (shut down the socket on EOF) is netcat-openbsd's.
if ! nc -h 2>&1 | grep -q -- '-N'; then
    echo "qemu-test: nc is not netcat-openbsd (no -N option)" >&2
    exit 1
fi

cargo build --release --quiet
# The seed's client (host-tap's reverse-client) is one of the real clients.
workspace="$(cd "$here/../.." && pwd)"
# Run from the workspace: this folder's .cargo/config.toml targets the board.
(cd "$workspace" && cargo build --release --quiet -p host-tap --bin reverse-client)
target_dir="$(cd "$workspace" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
reverse_client="$target_dir/release/reverse-client"

# Free ports on 127.0.0.1: one TCP port QEMU's user network forwards to the
# board, and two UDP ports for QEMU's socket backend (see below).
read -r port udp_ours udp_qemus < <(python3 - <<'EOF'
import socket
held = []
def free(kind):
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    held.append(sock)
    return sock.getsockname()[1]
print(free(socket.SOCK_STREAM), free(socket.SOCK_DGRAM), free(socket.SOCK_DGRAM))
EOF
)

work="$(mktemp -d)"
log="$work/firmware.log"
qemu_pid=""
decoder_pid=""
cleanup() {
    local status=$?
    [[ -n "$qemu_pid" ]] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
    [[ -n "$decoder_pid" ]] && wait "$decoder_pid" 2>/dev/null
    if [[ $status -ne 0 && -s "$log" ]]; then
        echo "--- firmware log ---" >&2
        cat "$log" >&2
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

mkfifo "$work/semihosting"
defmt-print -e "$elf" <"$work/semihosting" >"$log" 2>&1 &
decoder_pid=$!
# The board's NIC sits on QEMU's network hub with two backends:
# - the user network (slirp), restricted, forwarding TCP 127.0.0.1:$port to
#   the board's port 8888;
# - a socket backend carrying the hub's Ethernet frames in UDP datagrams on
#   127.0.0.1, because restricted slirp drops every UDP datagram the guest
#   sends; qemu-checks.py plays a host on it for the UDP checks.
qemu-system-arm -cpu cortex-m3 -M lm3s6965evb \
    -display none -serial null -monitor none \
    -semihosting-config enable=on,target=native \
    -net nic,model=stellaris \
    -net "user,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8888" \
    -net "socket,udp=127.0.0.1:$udp_ours,localaddr=127.0.0.1:$udp_qemus" \
    -kernel "$elf" </dev/null >"$work/semihosting" 2>"$work/qemu.err" &
qemu_pid=$!

# QEMU's user network drops frames until the MAC's receiver is on, so wait
# for the firmware to say so instead of sleeping.
deadline=$((SECONDS + boot_timeout))
until grep -q "listening" "$log" 2>/dev/null; do
    if ! kill -0 "$qemu_pid" 2>/dev/null; then
        echo "qemu-test: QEMU exited before the firmware listened" >&2
        cat "$work/qemu.err" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "qemu-test: no 'listening' line within ${boot_timeout}s" >&2
        exit 1
    fi
    sleep 0.2
done
echo "qemu-test: firmware listening, forwarded from 127.0.0.1:$port"

# The checks print "client checks: N passed, M failed"; the board-side
# checks below add to those counts.
python3 "$here/qemu-checks.py" "$port" "$udp_ours" "$udp_qemus" | tee "$work/checks.out" || true
read -r passed failed < <(sed -n 's/^client checks: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$work/checks.out")
if [[ -z "${passed:-}" ]]; then
    echo "FAIL client checks did not finish"
    passed=0
    failed=1
fi
report() {
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
}

seed_client_gets_every_reply() {
    local got
    got="$(printf 'hello\n각👍🏽 ok\r\nlast' | timeout 20 "$reverse_client" -i 127.0.0.1 -p "$port")" || true
    if [[ "$got" == $'olleh\nko 👍🏽각\r\ntsal' ]]; then
        echo "ok   the seed's client (reverse-client) gets every reply"
    else
        echo "FAIL the seed's client (reverse-client) gets every reply: got $(printf %q "$got")"
        return 1
    fi
}

firmware_alive() {
    if kill -0 "$qemu_pid" 2>/dev/null; then
        echo "ok   firmware still running after the checks"
    else
        echo "FAIL firmware still running after the checks"
        return 1
    fi
}

# The firmware logs a heartbeat every 10 s with the deepest stack use since
# boot; the first one after the checks covers them. The budget keeps static
# RAM plus stack within 24 KiB.
stack_budget=6144
stack_within_budget() {
    local before deadline line high_water
    before="$(grep -c heartbeat "$log" || true)"
    deadline=$((SECONDS + 15))
    until (($(grep -c heartbeat "$log" || true) > before)); do
        if ((SECONDS >= deadline)) || ! kill -0 "$qemu_pid" 2>/dev/null; then
            echo "FAIL stack high-water: no heartbeat from the firmware"
            return 1
        fi
        sleep 0.2
    done
    line="$(grep heartbeat "$log" | tail -n 1)"
    echo "     $line"
    high_water="$(sed -n 's/.*stack high-water \([0-9]*\)\/.*/\1/p' <<<"$line")"
    if [[ -n "$high_water" ]] && ((high_water <= stack_budget)); then
        echo "ok   stack high-water $high_water bytes within $stack_budget"
    else
        echo "FAIL stack high-water ${high_water:-?} bytes over $stack_budget"
        return 1
    fi
}

report seed_client_gets_every_reply
report firmware_alive
report stack_within_budget

echo "$passed passed, $failed failed"
((failed == 0))
