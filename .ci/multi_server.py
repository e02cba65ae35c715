#!/usr/bin/env python3
"""The deployment an institute grows into, tried for real: two app servers with one
SESSION_KEY on one PostgreSQL database and a three-node Garage cluster (replication 3).

Asserts: a login on one server is valid on the other; an upload through the other; failed
logins are counted across servers; the server running a job is killed mid-run and the other
finishes it without asking the answered questions again; with one Garage node stopped,
uploads and the staff ZIP still work; every stored file is then verified by SHA-256.

Needs TOXTEMP_BIN, DATABASE_URL, CLUSTER_S3_* and CLUSTER_DIR (see .ci/run)."""

import hashlib
import http.client
import http.server
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile

BIN = os.environ["TOXTEMP_BIN"]
WORK = os.environ.get("SCENARIO_DIR", "/tmp/toxtemp-multi-server")
STAFF = ("admin@example.org", "admin password 1")
USER = ("tox@example.org", "user password 1")
LLM_DELAY = 0.15


def log(message):
    print(f"[multi-server] {message}", flush=True)


def check(condition, message):
    if not condition:
        log(f"FAILED: {message}")
        sys.exit(1)
    log(f"ok: {message}")


class FakeLlm(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that answers slowly, citing the first passage."""

    requests = 0
    lock = threading.Lock()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with FakeLlm.lock:
            FakeLlm.requests += 1
        time.sleep(LLM_DELAY)
        user = body["messages"][1]["content"]
        m = re.search(r'<passage id="(D\d+\.P\d+)"[^>]*>\n([^\n]+)', user)
        content = (
            f'{m.group(2)} _(Source: {m.group(1)} "{" ".join(m.group(2).split()[:8])}")_'
            if m
            else "Answer not found in documents."
        )
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}],
                            "usage": {"prompt_tokens": 100, "completion_tokens": 10}}).encode()
        try:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server that asked was killed on purpose

    def log_message(self, *args):
        pass


class Browser:
    """One person's browser: a session cookie, sent to whichever server is asked."""

    def __init__(self):
        self.cookie = None

    def request(self, port, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = self.cookie
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie" and value.startswith("toxtemp_session="):
                self.cookie = value.split(";")[0]
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data

    def csrf(self, port, path="/login"):
        _, _, page = self.request(port, "GET", path)
        return re.search(rb'name="csrf-token" content="([^"]+)"', page).group(1).decode()

    def login(self, port, who):
        token = self.csrf(port)
        form = f"email={who[0]}&password={who[1].replace(' ', '+')}&csrf_token={token}"
        status, _, _ = self.request(port, "POST", "/login", form,
                                    {"Content-Type": "application/x-www-form-urlencoded"})
        return status

    def upload(self, port, title, files):
        token = self.csrf(port, "/add/")
        boundary = "scenario-boundary"
        out = io.BytesIO()
        fields = [("assay_id", "new"), ("investigation_id", "new"), ("new_investigation_title", "Scenario"),
                  ("study_id", "new"), ("new_study_title", title), ("new_assay_title", title),
                  ("share_files_for_development", "on")]
        for name, value in fields:
            out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        for name, data in files:
            out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                      f"Content-Type: text/plain\r\n\r\n".encode() + data + b"\r\n")
        out.write(f"--{boundary}--\r\n".encode())
        return self.request(port, "POST", f"/add/?csrf_token={token}", out.getvalue(),
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})[0]

    def assays(self, port):
        return json.loads(self.request(port, "GET", "/api/assays/status", headers={"Accept": "application/json"})[2])


def sql(query):
    out = subprocess.run(["psql", os.environ["DATABASE_URL"], "-tAc", query], capture_output=True, text=True)
    return out.stdout.strip()


def app_env(llm_port):
    env = dict(os.environ)
    env.update({
        "SESSION_KEY": "multi-server-session-key-multi-server-session-key",
        "ADMIN_EMAIL": STAFF[0], "ADMIN_PASSWORD": STAFF[1],
        "AWS_STORAGE_BUCKET_NAME": os.environ["CLUSTER_S3_BUCKET"],
        "AWS_S3_ENDPOINT_URL": os.environ["CLUSTER_S3_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": os.environ["CLUSTER_S3_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["CLUSTER_S3_SECRET_ACCESS_KEY"],
        "AWS_S3_REGION_NAME": "garage",
        "LLM_BASE_URL": f"http://127.0.0.1:{llm_port}/v1", "LLM_API_KEY": "scenario",
        "TOXTEMP_DATA_DIR": WORK, "RUST_LOG": "info",
    })
    return env


def start_server(name, port, env):
    logfile = open(f"{WORK}/{name}.log", "w")
    proc = subprocess.Popen([BIN, "serve"], env={**env, "TOXTEMP_BIND": f"127.0.0.1:{port}"},
                            stdout=logfile, stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                log(f"server {name} (pid {proc.pid}) on port {port}")
                return proc
        except OSError:
            pass
        time.sleep(0.5)
    check(False, f"server {name} starts")


def ready(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/readyz")
    return conn.getresponse().status == 200


def wait_done(browser, port, assay_id, timeout):
    started = time.time()
    while time.time() - started < timeout:
        for a in browser.assays(port):
            if a["id"] == assay_id and a["status"] in ("done", "error"):
                return a["status"], time.time() - started
        time.sleep(0.5)
    return "timeout", timeout


def main():
    os.makedirs(WORK, exist_ok=True)
    llm = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeLlm)
    threading.Thread(target=llm.serve_forever, daemon=True).start()
    env = app_env(llm.server_address[1])
    subprocess.run([BIN, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([BIN, "create-user", "--email", USER[0]], env={**env, "TOXTEMP_PASSWORD": USER[1]},
                   check=True, capture_output=True)
    a = start_server("A", 18081, env)
    b = start_server("B", 18082, env)
    servers = {a.pid: ("A", a, 18081), b.pid: ("B", b, 18082)}
    try:
        run(servers, env)
    finally:
        for _, proc, _ in servers.values():
            proc.kill()
        llm.shutdown()


def run(servers, env):
    check(ready(18081) and ready(18082), "both servers are ready (database, storage, workers)")
    user = Browser()
    check(user.login(18081, USER) == 303, "a user logs in on server A")
    check(user.request(18082, "GET", "/")[0] == 200, "the same session is valid on server B")

    attacker = Browser()
    for i in range(10):
        attacker.login(18081 if i % 2 == 0 else 18082, ("victim@example.org", f"guess {i}"))
    check(attacker.login(18081, ("victim@example.org", "guess 11")) == 429,
          "ten failures spread over both servers lock the account on either")

    documents = [("sop.txt", b"LUHMES cells are seeded at 100,000 cells per well.\n\n" * 20),
                 ("paper.txt", b"Neurite outgrowth is measured by high-content imaging.\n\n" * 20)]
    check(user.upload(18082, "Killed mid-run", documents) == 303, "an upload through server B")
    assay = max(x["id"] for x in user.assays(18081))
    # Let the run get going, then kill the server that runs it.
    for _ in range(200):
        holder = sql(f"SELECT locked_by FROM jobs WHERE subject = 'assay:{assay}' AND status = 'running'")
        if holder and FakeLlm.requests >= 20:
            break
        time.sleep(0.1)
    pid = int(holder.split("-")[-2])
    name, proc, _ = servers.pop(pid)
    before = FakeLlm.requests
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log(f"killed server {name} (pid {pid}) after {before} questions")
    survivor_name, _, survivor = next(iter(servers.values()))
    status, took = wait_done(user, survivor, assay, 180)
    check(status == "done", f"server {survivor_name} finished the job ({took:.0f} s after the kill)")
    check(FakeLlm.requests <= 77 + 8, f"answered questions were not asked again ({FakeLlm.requests} asked in all)")
    answers = int(sql(f"SELECT count(*) FROM answers WHERE assay_id = {assay}"))
    check(answers == 77, "all 77 answers are saved")

    subprocess.run(["bash", "-c", f"source .ci/garage.sh; source .ci/garage-cluster.sh; stop_cluster_node 3"],
                   check=True)
    log("stopped Garage node 3 of 3")
    check(ready(survivor), "with one storage node of three down the server stays ready")
    more = [("protocol.txt", b"Cells are exposed to rotenone for 24 hours.\n\n" * 10),
            ("readout.txt", b"Calcein-AM staining marks living cells.\n\n" * 10)]
    check(user.upload(survivor, "One node down", more) == 303, "an upload with a storage node down")
    second = max(x["id"] for x in user.assays(survivor))
    status, _ = wait_done(user, survivor, second, 180)
    check(status == "done", "its run finished")

    staff = Browser()
    check(staff.login(survivor, STAFF) == 303, "staff log in")
    token = staff.csrf(survivor, f"/admin/assays/{second}")
    status, headers, body = staff.request(survivor, "POST", f"/admin/assays/{second}/files.zip",
                                          f"csrf_token={token}", {"Content-Type": "application/x-www-form-urlencoded"})
    check(status == 200 and headers.get("content-type") == "application/zip", "the staff ZIP downloads")
    archive = zipfile.ZipFile(io.BytesIO(body))
    for name, data in more:
        got = hashlib.sha256(archive.read(f"files/{name}")).hexdigest()
        check(got == hashlib.sha256(data).hexdigest(), f"{name} in the ZIP matches by SHA-256")

    verify = subprocess.run([BIN, "verify-storage", "--rehash"], env=env, capture_output=True, text=True)
    log(verify.stdout.strip())
    check(verify.returncode == 0 and "checked 4 file(s)" in verify.stdout and "all good" in verify.stdout,
          "every stored file verifies by SHA-256")
    kept = int(sql("SELECT count(*) FROM file_assets WHERE status = 'available'"))
    check(kept == 4, "no stored file was lost")
    log("all green")


if __name__ == "__main__":
    main()
