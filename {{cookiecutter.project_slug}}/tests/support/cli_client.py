"""A console script run by the warm CLI server: `cli_client.py SOCKET SCRIPT ENTRY_POINT ARGS...`.

Sends the arguments, the working directory, the environment and this process's own stdin, stdout and
stderr (as file descriptors) to the server, which runs the entry point in a fresh fork writing straight
to them, and exits with the code the command returned. Standard library only: it starts in milliseconds
(run it with `python -I -S`).
"""

import json
import os
import socket
import struct
import sys

NO_ANSWER = 70  # EX_SOFTWARE: the command's process died without reporting an exit code


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
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(socket_path)
        socket.send_fds(connection, [struct.pack("!Q", len(request))], [0, 1, 2])
        connection.sendall(request)
        answer = b""
        while len(answer) < 4:
            chunk = connection.recv(4 - len(answer))
            if not chunk:
                print("cli server: the command died without an exit code", file=sys.stderr)
                return NO_ANSWER
            answer += chunk
    return struct.unpack("!i", answer)[0]


if __name__ == "__main__":
    sys.exit(main())
