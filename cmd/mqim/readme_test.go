package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Ensure the README's quick start works as written against the real
// binary: the block after <!-- quickstart --> runs with bash, with only the
// data directory and the address replaced by the test's. Every answer it
// gets must match the OpenAPI document the binary serves (traceCurl).
func TestMain_READMEQuickStart(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "md5sum"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install curl jq", err != nil)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- quickstart -->\n```sh\n")
	script, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README has no quick start block after <!-- quickstart -->")
	}
	work := t.TempDir()
	p := startMQIM(t, filepath.Join(work, "data"))
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", p.HTTP)
	trace := t.TempDir()

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", traceCurl+script)
	cmd.Dir = work // the script reads data/credentials.json
	cmd.Env = append(os.Environ(), "MQIM_TRACE="+trace)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quick start failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{
		"201",
		`"from":"alice","to":"bob","ns":"` + p.AppID + `"`,
		`"friends":["bob"]`,
		`[{"id":"alice","online":false`,
		"", // the group id, checked below
		`"owner":"alice","members":["bob"]`,
		`"`,
		"[]",
		`["` + p.HTTP + `/attachments/`, // an upload: mq sends no JSON type with -F
	}
	if len(lines) != len(want) {
		t.Fatalf("quick start printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want it to contain %q", i+1, lines[i], w)
		}
	}
	if gid := lines[4]; len(gid) != 32 || !strings.Contains(lines[5], gid) {
		t.Errorf("group id line %q, detail %q", gid, lines[5])
	}
	if n := checkTracedCalls(t, p.HTTP, trace); n != len(want) {
		t.Errorf("%d REST calls validated against the OpenAPI document, want %d", n, len(want))
	}
}

// traceCurl is a bash prelude that wraps curl: each call also leaves its
// arguments, response headers and body in a directory of $MQIM_TRACE,
// and prints what curl would have printed (the body, then -w's output).
const traceCurl = `curl() {
  local d w rc=0
  d=$(mktemp -d "$MQIM_TRACE/call.XXXXXX")
  printf '%s\0' "$@" > "$d/args"
  w=$(command curl -D "$d/headers" -o "$d/body" "$@") || rc=$?
  cat "$d/body"; printf '%s' "$w"
  return $rc
}
`

// checkTracedCalls validates every call traceCurl recorded in dir against
// the OpenAPI document served at base/openapi.json (the route by method
// and path, the answer's status and body by its schema) and returns how
// many it checked.
func checkTracedCalls(t *testing.T, base, dir string) int {
	t.Helper()
	res, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /openapi.json: %d %v", res.StatusCode, err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		t.Fatalf("load /openapi.json: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("/openapi.json: %v", err)
	}
	calls, err := filepath.Glob(filepath.Join(dir, "call.*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		rawArgs, err1 := os.ReadFile(filepath.Join(c, "args"))
		rawHdr, err2 := os.ReadFile(filepath.Join(c, "headers"))
		body, err3 := os.ReadFile(filepath.Join(c, "body"))
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("trace %s: %v %v %v", c, err1, err2, err3)
		}
		method, url := "GET", ""
		args := strings.Split(strings.TrimSuffix(string(rawArgs), "\x00"), "\x00")
		for i, a := range args {
			switch {
			case a == "-X" && i+1 < len(args):
				method = args[i+1]
			case (a == "-d" || a == "-F" || a == "--data" || a == "--form") && method == "GET":
				method = "POST" // curl posts a body or a form unless -X says otherwise
			case strings.HasPrefix(a, base):
				url = a
			}
		}
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(rawHdr)))
		statusLine, err := tp.ReadLine()
		if err != nil {
			t.Fatalf("trace %s: %v", c, err)
		}
		mime, err := tp.ReadMIMEHeader()
		if err != nil && err != io.EOF {
			t.Fatalf("trace %s: %v", c, err)
		}
		f := strings.Fields(statusLine)
		status := 0
		if len(f) > 1 {
			status, _ = strconv.Atoi(f[1])
		}
		req, err := http.NewRequest(method, url, nil)
		if err != nil || url == "" {
			t.Fatalf("trace %s: curl %q: no URL", c, args)
		}
		call := method + " " + strings.TrimPrefix(url, base)
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s: not in the OpenAPI document: %v", call, err)
			continue
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
			Status:                 status,
			Header:                 http.Header(mime),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		in.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s: %d %s does not match the OpenAPI document: %v", call, status, body, err)
		}
		if r := route.Operation.Responses.Status(status); r != nil && len(r.Value.Content) == 0 && len(body) != 0 {
			t.Errorf("%s: %d documented without a body, got %s", call, status, body)
		}
		t.Logf("%s: %d matches %s", call, status, route.Operation.OperationID)
	}
	return len(calls)
}

// Ensure the README's token flow works as written against the real binary
// with curl, jq and mosquitto_pub: the block after <!-- tokenflow --> runs
// with bash, with only the data directory and the ports replaced.
func TestMain_READMETokenFlow(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "mosquitto_pub"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install curl jq mosquitto-clients", err != nil)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- tokenflow -->\n```sh\n")
	script, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README has no token flow block after <!-- tokenflow -->")
	}
	work := t.TempDir()
	p := startMQIM(t, filepath.Join(work, "data"))
	host, port, _ := net.SplitHostPort(p.MQTT)
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", p.HTTP)
	script = strings.ReplaceAll(script, "-h 127.0.0.1 -p 1883", "-h "+host+" -p "+port)

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("token flow failed: %v\n%s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "Connection error") && !strings.HasPrefix(l, "Error:") {
			lines = append(lines, l) // mosquitto_pub's own complaint before "refused"
		}
	}
	want := []string{`[{"speaker":"alice","content":{"media":0,"body":"hi bob"}`, `{"errorCode":5003,`, "refused"}
	if len(lines) != len(want) {
		t.Fatalf("token flow printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], w)
		}
	}
	t.Logf("output:\n%s", out)
}
