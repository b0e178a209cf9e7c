# hello: the dev-stack example app. Answers every request with one line that
# names this instance (random per start, so load balancing is visible), the
# protocol, the port and the GREETING variable delivered as an encrypted env.
#   port 80    HTTP/1.1   (https://<app_id>.<base>:<gw>/)
#   port 8080  HTTP/1.1   (https://<app_id>-8080.<base>:<gw>/)
#   port 443   HTTPS, TLS terminated here (https://<app_id>-443s.<base>:<gw>/)
#   port 50051 HTTP/2 cleartext (https://<app_id>-50051g.<base>:<gw>/)
# Ports can be moved with HELLO_PORT_BASE (added to each) for hosts where
# low ports are not available.
import http.server, os, socket, ssl, subprocess, tempfile, threading, uuid

INSTANCE = uuid.uuid4().hex[:12]
GREETING = os.environ.get("GREETING", "(GREETING not set)")
BASE = int(os.environ.get("HELLO_PORT_BASE", "0"))

def line(proto, port):
    return f"hello from {INSTANCE} proto={proto} port={port} GREETING={GREETING}\n".encode()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = line(self.server.proto, self.server.server_port - BASE)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET
    allow_reuse_address = True

def http1(port, proto, ctx=None):
    s = S(("0.0.0.0", port), H)
    s.proto = proto
    if ctx:
        s.socket = ctx.wrap_socket(s.socket, server_side=True)
    threading.Thread(target=s.serve_forever, daemon=True).start()

def tls_ctx():
    d = tempfile.mkdtemp()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "30", "-subj", "/CN=hello", "-keyout", d + "/k.pem",
                    "-out", d + "/c.pem"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d + "/c.pem", d + "/k.pem")
    return ctx

def h2c(port):
    import h2.config, h2.connection, h2.events
    srv = socket.create_server(("0.0.0.0", port), reuse_port=False)
    def serve(c):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        c.sendall(conn.data_to_send())
        while (data := c.recv(65536)):
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    body = line("h2", port - BASE)
                    conn.send_headers(ev.stream_id, [(":status", "200"), ("content-type", "text/plain"),
                                                     ("content-length", str(len(body)))])
                    conn.send_data(ev.stream_id, body, end_stream=True)
            c.sendall(conn.data_to_send())
        c.close()
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()

http1(BASE + 80, "http/1.1")
http1(BASE + 8080, "http/1.1")
http1(BASE + 443, "https", tls_ctx())
print(f"hello {INSTANCE}: serving on {BASE + 80}, {BASE + 8080}, {BASE + 443} (TLS), {BASE + 50051} (h2c)", flush=True)
h2c(BASE + 50051)
