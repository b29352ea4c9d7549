package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The upstream serves canned CRM JSON: the static responder every
// configuration forwards to, one nginx worker on the load CPU. Paths:
//
//	GET  /api/contacts/42   one contact, about 2 KB
//	GET  /api/contacts      a page of contacts, about 64 KB
//	POST /api/contacts      201 with a short JSON body (the request body is read and dropped)
//	GET  /api/admin/users   a short list (the policy refuses it to the benchmark user)
//	GET  /size/NAME         bodies for the response-size curve (sizeSteps)
const (
	pathItem  = "/api/contacts/42"
	pathList  = "/api/contacts"
	pathAdmin = "/api/admin/users"
)

// sizeSteps are the response sizes of the throughput-vs-size curve.
var sizeSteps = []struct {
	name  string
	bytes int
}{{"1k", 1 << 10}, {"16k", 16 << 10}, {"64k", 64 << 10}, {"256k", 256 << 10}, {"1m", 1 << 20}, {"10m", 10 << 20}}

// contactJSON is one contact record of about 2 KB, with the fields the
// shipped policy's views redact (ssn, credit_card, email, phone).
func contactJSON(id int) string {
	notes := strings.Repeat("Met at the trade fair; prefers e-mail; renewal due in Q3. ", 26)
	return fmt.Sprintf(`{"id":"%d","name":"Contact %d","company":"Example Trading %d Ltd","email":"contact%d@example.com","phone":"+44 20 7946 %04d","ssn":"078-05-%04d","credit_card":"4111 1111 1111 %04d","owner":"alice","address":{"street":"%d High Street","city":"London","postcode":"EC1A 1BB","country":"GB"},"tags":["customer","priority"],"notes":%q}`,
		id, id, id, id, id%10000, id%10000, id%10000, id, notes)
}

// listJSON is {"items":[...]} with contacts until it is about size bytes.
func listJSON(size int) string {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := 1; ; i++ {
		c := contactJSON(i)
		if i > 1 && b.Len()+len(c)+3 > size {
			break
		}
		if i > 1 {
			b.WriteByte(',')
		}
		b.WriteString(c)
	}
	b.WriteString(`]}`)
	return b.String()
}

// postBody is the 1 KB body of the POST workload.
func postBody() string {
	c := fmt.Sprintf(`{"name":"New Contact","company":"Example Trading Ltd","email":"new@example.com","phone":"+44 20 7946 0000","notes":%q}`, strings.Repeat("x", 880))
	return c
}

// writeContent writes the upstream's files into dir.
func writeContent(dir string) error {
	files := map[string]string{
		"contact.json":  contactJSON(42),
		"contacts.json": listJSON(64 << 10),
		"users.json":    `{"items":[{"id":"u1","name":"alice"},{"id":"u2","name":"bob"}]}`,
	}
	for _, s := range sizeSteps {
		files[filepath.Join("size", s.name)] = listJSON(s.bytes)
	}
	if err := os.MkdirAll(filepath.Join(dir, "size"), 0o755); err != nil {
		return err
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// nginxCommon is the top of every nginx configuration of the benchmark:
// one worker, in the foreground, everything under the work folder.
func nginxCommon(e *env, name string, master bool) string {
	tmp := filepath.Join(e.work, "nginx-"+name)
	_ = os.MkdirAll(tmp, 0o755)
	user := ""
	if os.Geteuid() == 0 {
		// Workers would switch to nobody, who cannot read the work folder.
		user = "user root;\n"
	}
	mp := "off"
	if master {
		mp = "on"
	}
	return fmt.Sprintf(`%sworker_processes 1;
daemon off;
master_process %s;
pid %s;
error_log %s warn;
events { worker_connections 8192; }
`, user, mp, filepath.Join(tmp, "nginx.pid"), filepath.Join(tmp, "error.log")) + "http {\n" +
		fmt.Sprintf("  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fastcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;\n", tmp) +
		"  keepalive_requests 10000000; keepalive_timeout 120s;\n"
}

// nginxContent is the server body that serves the canned files.
func nginxContent(e *env) string {
	return fmt.Sprintf(`    root %s;
    default_type application/json;
    location = %s { if ($request_method = POST) { return 201 '{"id":"c-1001","status":"created"}'; } try_files /contacts.json =404; }
    location = %s { try_files /contact.json =404; }
    location = %s { try_files /users.json =404; }
    location /size/ { }
    location = /healthz { return 200 'ok'; }
`, e.www, pathList, pathItem, pathAdmin)
}

// startUpstream starts the upstream on the load CPU, where it stays for
// the whole run.
func startUpstream(ctx context.Context, e *env) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	conf := nginxCommon(e, "upstream", false) + "  access_log off;\n  sendfile on; tcp_nopush on;\n  client_body_buffer_size 64k;\n" +
		"  server {\n    listen " + addr + " backlog=4096;\n" + nginxContent(e) + "  }\n}\n"
	path := filepath.Join(e.work, "upstream-nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return err
	}
	p, err := e.procs.start("upstream", nil, pinned(loadCPU, e.tools["nginx"], "-c", path, "-e", "stderr")...)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, p, 20*time.Second, func(ctx context.Context) error {
		return getOK(ctx, nil, "http://"+addr+"/healthz", nil)
	}); err != nil {
		return err
	}
	e.upAddr, e.upstream = addr, p
	return nil
}

// sizeBytes returns the size of the body served at /size/name.
func sizeBytes(e *env, name string) int {
	fi, err := os.Stat(filepath.Join(e.www, "size", name))
	if err != nil {
		return 0
	}
	return int(fi.Size())
}

func itoa(i int) string { return strconv.Itoa(i) }
