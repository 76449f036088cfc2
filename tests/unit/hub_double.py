"""The lab's hub TEST DOUBLE (lab/hub-double) in a thread on loopback, for the model_files tests."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import pathlib
import threading

REPO = pathlib.Path(__file__).resolve().parents[2]


def load():
    loader = importlib.machinery.SourceFileLoader("hub_double_script", str(REPO / "lab" / "hub-double"))
    spec = importlib.util.spec_from_loader("hub_double_script", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class HubDouble:
    """Serves one repository from a directory; .endpoint, .commit, .log (every request), .stop()."""

    def __init__(self, directory, repo="lab/tiny-llama"):
        self.mod = load()
        files, self.commit = self.mod.scan(str(directory))
        self.log = io.StringIO()
        self.repo = repo
        self.httpd = self.mod.http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), self.mod.make_handler(repo, files, self.commit, self.log))
        self.endpoint = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def requests(self, needle):
        return [line for line in self.log.getvalue().splitlines() if needle in line]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
