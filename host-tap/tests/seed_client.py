#!/usr/bin/env python3
"""The seed's thread_client, scripted: for each message argument, send it
with no newline, wait for the whole answer, and print it on its own line.

Usage: seed_client.py HOST PORT MESSAGE...

A server started with no flags answers such a message after its idle flush
(the message ends where the client's write ended). The reversal of a message
has as many bytes as the message, which tells when the answer is complete.
Every wait is bounded (10 s).
"""

import socket
import sys


def main():
    host, port, messages = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect((host, port))
        for message in messages:
            data = message.encode()
            conn.sendall(data)
            answer = b""
            while len(answer) < len(data):
                chunk = conn.recv(1024)
                if not chunk:
                    sys.exit(f"server closed after {answer!r}")
                answer += chunk
            print(answer.decode(), flush=True)


if __name__ == "__main__":
    main()
