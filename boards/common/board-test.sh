# Whole-firmware test of one board in QEMU, sourced by the board's
# qemu-test.sh after it sets:
#   package    the firmware's cargo package (and ELF name)
#   target     its target triple
#   qemu       the QEMU command for the machine, as an array
#   nic_model  QEMU's name for the board's Ethernet controller
#
# Builds the release firmware, boots it with a restricted user network
# (restrict=on) whose DHCP server leases 10.9.8.77 out of 10.9.8.0/24, and a
# forward of a free TCP port on 127.0.0.1 to 10.9.8.77:8888, so a firmware
# that does not take its address from the lease cannot pass. Waits for the
# firmware's "serving at" log line, then runs qemu-checks.py (the SPEC's
# behaviours, UDP, lease renewals, with real clients on 127.0.0.1: Python
# sockets, nc and the seed's client), then checks the log: one lease, never
# lost, RAM in use (static plus the stack high-water mark), and the one UDP
# reply that could not be delivered dropped and counted.
#
# With --static-address: the build with a fixed address (without the dhcp
# feature) on QEMU's default network, reached at 10.0.2.15.
# With --no-graphemes: the build without the Unicode tables, which reverses
# by scalar values (for its stack figure).
#
# Needs: qemu-system-*, defmt-print (cargo install defmt-print), python3,
#        nc (netcat-openbsd).
set -euo pipefail

static_address=false
graphemes=true
for arg in "$@"; do
    case "$arg" in
    --static-address) static_address=true ;;
    --no-graphemes) graphemes=false ;;
    *)
        echo "usage: $0 [--static-address] [--no-graphemes]" >&2
        exit 2
        ;;
    esac
done

# This file, and the board's qemu-test.sh that sourced it.
common="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
boards="$(cd "$common/.." && pwd)"
cd "$here"

boot_timeout=60
elf="$boards/target/$target/release/$package"
board_mac=52:54:00:12:34:56
features=()
checks_args=()
if $static_address; then
    board_ip=10.0.2.15
    user_net="user,restrict=on"
else
    # Leases capped at 20 s, so renewals happen within the test (slirp's
    # own lease is 24 h).
    features+=(test-lease)
    checks_args+=(--dhcp)
    board_ip=10.9.8.77
    user_net="user,restrict=on,net=10.9.8.0/24,dhcpstart=$board_ip"
fi
if $graphemes; then
    features+=(graphemes)
else
    checks_args+=(--chars)
fi

for tool in "${qemu[0]}" defmt-print python3 nc; do
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

cargo build --release --quiet --no-default-features --features "$(IFS=,; echo "${features[*]}")"
# The seed's client (host-tap's reverse-client) is one of the real clients.
workspace="$(cd "$boards/.." && pwd)"
# Run from the host workspace: the board's .cargo/config.toml targets the board.
(cd "$workspace" && cargo build --release --quiet -p host-tap --bin reverse-client)
target_dir="$(cd "$workspace" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
reverse_client="$target_dir/release/reverse-client"

# Free ports on 127.0.0.1: one TCP port QEMU's user network forwards to the
# board, and two UDP ports for QEMU's socket backend (see below). They are
# free when asked for, not when QEMU binds them a moment later: another test
# may take one in between, so QEMU is started again on new ports if its
# forwarding cannot be set up (start_qemu, below).
pick_ports() {
    read -r port udp_ours udp_qemus < <(python3 - <<'PY'
import socket
held = []
def free(kind):
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    held.append(sock)
    return sock.getsockname()[1]
print(free(socket.SOCK_STREAM), free(socket.SOCK_DGRAM), free(socket.SOCK_DGRAM))
PY
)
}

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
# Boots the firmware on new ports; the decoder reads the semihosting pipe
# for as long as QEMU writes to it.
start_qemu() {
    pick_ports
    defmt-print -e "$elf" <"$work/semihosting" >"$log" 2>&1 &
    decoder_pid=$!
    # The board's NIC sits on QEMU's network hub with two backends:
    # - the user network (slirp), restricted, forwarding TCP 127.0.0.1:$port to
    #   the board's port 8888 and answering DHCP;
    # - a socket backend carrying the hub's Ethernet frames in UDP datagrams on
    #   127.0.0.1, because restricted slirp drops every UDP datagram the guest
    #   sends; qemu-checks.py plays a host on it for the UDP checks, and sees
    #   the DHCP renewals.
    "${qemu[@]}" \
        -display none -serial null -monitor none \
        -semihosting-config enable=on,target=native \
        -net "nic,model=$nic_model,macaddr=$board_mac" \
        -net "$user_net,hostfwd=tcp:127.0.0.1:$port-$board_ip:8888" \
        -net "socket,udp=127.0.0.1:$udp_ours,localaddr=127.0.0.1:$udp_qemus" \
        -kernel "$elf" </dev/null >"$work/semihosting" 2>"$work/qemu.err" &
    qemu_pid=$!
}

# QEMU's user network drops frames until the MAC's receiver is on, and the
# address comes with the lease: wait for the firmware to say it listens.
start_qemu
starts=1
deadline=$((SECONDS + boot_timeout))
until grep -q "serving at" "$log" 2>/dev/null; do
    if ! kill -0 "$qemu_pid" 2>/dev/null; then
        wait "$decoder_pid" 2>/dev/null
        if grep -q "Could not set up host forwarding\|Address already in use" "$work/qemu.err" &&
            ((starts < 5)); then
            starts=$((starts + 1))
            start_qemu
            continue
        fi
        echo "qemu-test: QEMU exited before the firmware listened" >&2
        cat "$work/qemu.err" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "qemu-test: no 'serving at' line within ${boot_timeout}s" >&2
        exit 1
    fi
    sleep 0.2
done
echo "qemu-test: $(grep -m1 "serving at" "$log" | sed 's/.*\(serving at\)/\1/'), forwarded from 127.0.0.1:$port"

failed=0
report() {
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
}

serves_at_the_expected_address() {
    # defmt shows a MAC address with dashes.
    local expected="serving at $board_ip:8888 (mac ${board_mac//:/-})"
    if grep -qF "$expected" "$log"; then
        echo "ok   $expected"
    else
        echo "FAIL $expected: $(grep -m1 "serving at" "$log")"
        return 1
    fi
}
# Elsewhere the clients reach nothing: every check would only time out.
if ! serves_at_the_expected_address; then
    echo "$package: 0 passed, 1 failed (the board is not at $board_ip)"
    exit 1
fi
passed=1

# The checks print "client checks: N passed, M failed"; the board-side
# checks below add to those counts.
python3 "$common/qemu-checks.py" "$port" "$udp_ours" "$udp_qemus" "$board_ip" "$board_mac" "${checks_args[@]}" |
    tee "$work/checks.out" || true
read -r client_passed client_failed < <(sed -n 's/^client checks: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$work/checks.out")
if [[ -z "${client_passed:-}" ]]; then
    echo "FAIL client checks did not finish"
    client_passed=0
    client_failed=1
fi
passed=$((passed + client_passed))
failed=$((failed + client_failed))

seed_client_gets_every_reply() {
    local got
    got="$(printf 'hello\n각👍🏽 ok\r\nlast' | timeout 20 "$reverse_client" -i 127.0.0.1 -p "$port")" || true
    # Without graphemes the skin tone modifier is reversed apart.
    local expected=$'olleh\nko 👍🏽각\r\ntsal'
    $graphemes || expected=$'olleh\nko 🏽👍각\r\ntsal'
    if [[ "$got" == "$expected" ]]; then
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

# Renewals that change nothing are silent: one lease line, never lost.
one_lease_never_lost() {
    local leases lost
    leases="$(grep -c "DHCP lease: $board_ip/24" "$log" || true)"
    lost="$(grep -c " lost: no address" "$log" || true)"
    if ((leases == 1 && lost == 0)); then
        echo "ok   one DHCP lease logged ($board_ip/24), never lost"
    else
        echo "FAIL one DHCP lease logged ($board_ip/24), never lost: $leases leases, $lost lost"
        return 1
    fi
}

# The firmware logs a heartbeat every 10 s with the deepest stack use since
# boot and the stack region's size; the first one after the checks covers
# them. RAM in use is the static RAM (RAM in memory.x less the stack region)
# plus the stack high-water mark; the target is 24 KiB for 3 sessions.
ram_budget=$((24 * 1024))
ram_kib="$(sed -n 's/^ *RAM *: *ORIGIN.*LENGTH *= *\([0-9]*\)K.*/\1/p' "$here/memory.x")"
ram_within_budget() {
    local before deadline line high_water capacity in_use
    before="$(grep -c heartbeat "$log" || true)"
    # A heartbeat every 10 s of the board's time; a loaded host may stretch it.
    deadline=$((SECONDS + 30))
    until (($(grep -c heartbeat "$log" || true) > before)); do
        if ((SECONDS >= deadline)) || ! kill -0 "$qemu_pid" 2>/dev/null; then
            echo "FAIL RAM in use: no heartbeat from the firmware"
            return 1
        fi
        sleep 0.2
    done
    line="$(grep heartbeat "$log" | tail -n 1)"
    echo "     $line"
    read -r high_water capacity < <(sed -n 's/.*stack high-water \([0-9]*\)\/\([0-9]*\) bytes.*/\1 \2/p' <<<"$line")
    in_use=$((ram_kib * 1024 - capacity + high_water))
    if [[ -n "$high_water" ]] && ((in_use <= ram_budget)); then
        echo "ok   RAM in use $in_use bytes (static $((ram_kib * 1024 - capacity)) + stack high-water $high_water) within $ram_budget"
    else
        echo "FAIL RAM in use $in_use bytes (static $((ram_kib * 1024 - capacity)) + stack high-water ${high_water:-?}) over $ram_budget"
        return 1
    fi
}

# The checks send one datagram whose sender never answers ARP: its reply is
# dropped and counted (after the next datagram took its reply socket, or
# after the core's UDP_REPLY_TIMEOUT), the only UDP datagram not answered.
# Reads the heartbeat ram_within_budget waited for.
unowned_senders_reply_dropped_and_counted() {
    local line
    line="$(grep heartbeat "$log" | tail -n 1)"
    if grep -Eq 'udp_dropped: 1([^0-9]|$)' <<<"$line"; then
        echo "ok   the unowned sender's reply dropped and counted (udp_dropped: 1)"
    else
        echo "FAIL the unowned sender's reply dropped and counted: $(grep -o 'udp_dropped: [0-9]*' <<<"$line")"
        return 1
    fi
}

report seed_client_gets_every_reply
report firmware_alive
$static_address || report one_lease_never_lost
report ram_within_budget
report unowned_senders_reply_dropped_and_counted

echo "$package: $passed passed, $failed failed"
((failed == 0))
