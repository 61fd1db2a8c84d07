"""Drives an interactive redis-cli in a pseudo-terminal, as a person would.

  interactive.py hints <port>      typing "QPUSH " and "QDLQ LIST " shows the
                                   argument hints redis-cli built from COMMAND DOCS
  interactive.py reconnect <port> <restart-command>
                                   one session: a command, a server restart, the
                                   same session's next command is answered
"""

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

ESCAPES = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")


class Session:
    def __init__(self, port):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ["TERM"] = "xterm"
            os.execvp("redis-cli", ["redis-cli", "-p", port])
        # Without a window size linenoise measures one column: no hints.
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        self.read(1.0)

    def read(self, seconds):
        """The screen output for `seconds`, escape sequences removed."""
        out, end = b"", time.time() + seconds
        while time.time() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            out += chunk
            if b"\x1b[6n" in chunk:  # linenoise asks where the cursor is
                os.write(self.fd, b"\x1b[1;1R")
        return ESCAPES.sub(b"", out).decode(errors="replace")

    def type(self, text, seconds=0.8):
        os.write(self.fd, text.encode())
        return self.read(seconds)

    def close(self):
        self.type("\x15quit\r", 0.3)
        os.waitpid(self.pid, 0)


def hints(port):
    s = Session(port)
    shown = s.type("QPUSH ")
    assert "QPUSH queue payload [PRIORITY priority]" in shown, shown[-300:]
    shown = s.type("\x15QDLQ LIST ")
    assert "QDLQ LIST queue [COUNT count]" in shown, shown[-300:]
    s.close()


def reconnect(port, restart):
    s = Session(port)
    assert "(integer) 1" in s.type("QPUSH cli:r x\r"), "push"
    subprocess.run(restart, shell=True, check=True)
    # redis-cli notices the lost connection on the next command and
    # reconnects; the command after that is answered by the new server.
    shown = s.type("QLEN cli:r\r", 1.0) + s.type("QLEN cli:r\r", 1.0)
    assert "(integer) 1" in shown, shown[-300:]
    s.close()


if __name__ == "__main__":
    {"hints": hints, "reconnect": reconnect}[sys.argv[1]](*sys.argv[2:])
