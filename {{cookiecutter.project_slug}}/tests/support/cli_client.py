"""A console script run by the warm CLI server: `cli_client.py SOCKET SCRIPT ENTRY_POINT ARGS...`.

Sends the arguments, the working directory, the environment and this process's own stdin, stdout and
stderr (as file descriptors) to the server, which runs the entry point in a fresh fork writing straight
to them. The fork's process id comes back first: a signal this process receives (SIGTERM, SIGINT, ...)
is passed on to it, so stopping this process stops the command as it would stop the command itself.
This process then exits with the code the command returned, or dies of the signal that ended it.
Standard library only: it starts in milliseconds (run it with `python -I -S`).
"""

import contextlib
import json
import os
import signal
import socket
import struct
import sys

NO_ANSWER = 70  # EX_SOFTWARE: the command's process died without reporting an exit code
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _read(connection: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main() -> int:
    socket_path, script, entry_point, *arguments = sys.argv[1:]
    request = json.dumps(
        {
            "script": script,
            "entry_point": entry_point,
            "argv": arguments,
            "cwd": os.getcwd(),
            "env": dict(os.environ),
        }
    ).encode()
    received: list[int] = []
    # Until the command's pid is known, a signal is remembered and passed on once it is.
    for number in FORWARDED:
        signal.signal(number, lambda number, frame: received.append(number))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(socket_path)
        socket.send_fds(connection, [struct.pack("!Q", len(request))], [0, 1, 2])
        connection.sendall(request)
        pid = _read(connection, 8)
        if pid is not None:
            (command,) = struct.unpack("!q", pid)

            def forward(number: int, frame: object) -> None:
                received.append(number)
                with contextlib.suppress(ProcessLookupError):  # the command has just ended
                    os.kill(command, number)

            for number in FORWARDED:
                signal.signal(number, forward)
            for number in list(received):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(command, number)
            answer = _read(connection, 4)
        else:
            answer = None
    if answer is not None:
        return struct.unpack("!i", answer)[0]
    if received:
        # The command died of a signal it was sent: so does this process, as the command would have.
        signal.signal(received[-1], signal.SIG_DFL)
        os.kill(os.getpid(), received[-1])
    print("cli server: the command died without an exit code", file=sys.stderr)
    return NO_ANSWER


if __name__ == "__main__":
    sys.exit(main())
