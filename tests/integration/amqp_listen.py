"""An AMQP 1.0 consumer (qpid-proton, the library protonmsg uses): it receives from one
address and appends each message to a file as a JSON line, after a first line "ready"
once its link is attached.

    /usr/bin/python3 amqp_listen.py URL ADDRESS OUTFILE
"""

import json
import sys

from proton.handlers import MessagingHandler
from proton.reactor import Container


class Listen(MessagingHandler):
    def __init__(self, url: str, address: str, out: str) -> None:
        super().__init__()
        self.url, self.address, self.out = url, address, out

    def on_start(self, event) -> None:
        connection = event.container.connect(self.url)
        event.container.create_receiver(connection, self.address)

    def on_link_opened(self, event) -> None:
        with open(self.out, "w", encoding="utf-8") as f:
            f.write("ready\n")

    def on_message(self, event) -> None:
        m = event.message
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps({"annotations": {str(k): str(v) for k, v in
                                                (m.annotations or {}).items()},
                                "props": m.properties, "body": json.loads(m.body)},
                               sort_keys=True) + "\n")


if __name__ == "__main__":
    Container(Listen(*sys.argv[1:4])).run()
