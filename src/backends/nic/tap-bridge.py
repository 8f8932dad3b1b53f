#!/usr/bin/env python3
# A TAP interface bridged to a UDP socket on loopback, one frame per datagram: the `tap`
# network backend (src/backends/nic/tap.ts) starts this, because Node cannot issue the
# TUNSETIFF ioctl. The UDP socket is opened in the caller's network namespace, then (with
# --netns NAME) the process enters /run/netns/NAME and creates the TAP there, so the TAP
# lives in the namespace while its frames reach muxvisor on the host's loopback.
# Prints "ready PORT" (its UDP port) on stdout once the TAP is up; errors on stderr, exit 1.
import argparse, ctypes, fcntl, os, select, socket, struct, subprocess, sys

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000

def fail(msg):
    print(msg, file=sys.stderr, flush=True)
    sys.exit(1)

ap = argparse.ArgumentParser()
ap.add_argument('--ifname', required=True)
ap.add_argument('--netns')
ap.add_argument('--peer', type=int, required=True, help='UDP port of muxvisor on 127.0.0.1')
a = ap.parse_args()

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(('127.0.0.1', 0))
sock.connect(('127.0.0.1', a.peer))
if a.netns:
    try:
        fd = os.open('/run/netns/' + a.netns, os.O_RDONLY)
    except OSError as e:
        fail(f'network namespace {a.netns}: {e.strerror} (create it with: ip netns add {a.netns})')
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        fail(f'setns({a.netns}): {os.strerror(ctypes.get_errno())}')
try:
    tap = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(tap, TUNSETIFF, struct.pack('16sH', a.ifname.encode(), IFF_TAP | IFF_NO_PI))
except OSError as e:
    fail(f'TAP {a.ifname}: {e.strerror}')
r = subprocess.run(['ip', 'link', 'set', a.ifname, 'up'], capture_output=True, text=True)
if r.returncode != 0:
    fail(f'ip link set {a.ifname} up: {r.stderr.strip()}')
print('ready', sock.getsockname()[1], flush=True)
while True:
    ready, _, _ = select.select([tap, sock, sys.stdin], [], [])
    if sys.stdin in ready and not sys.stdin.buffer.read1(1):
        break  # muxvisor closed our stdin: done
    if tap in ready:
        frame = os.read(tap, 65536)
        try:
            sock.send(frame)
        except OSError:
            pass  # muxvisor not listening yet or gone: the frame is lost, as on a wire
    if sock in ready:
        try:
            frame = sock.recv(65536)
            os.write(tap, frame)
        except OSError:
            pass
