package repocheck

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// mqimSubcommands are the subcommands of the mqim binary that a
// HEALTHCHECK may run (cmd/mqim/cli.go, `mqim help`). Keep in step with
// the command line: a healthcheck naming a command the binary lacks marks
// every container unhealthy.
var mqimSubcommands = []string{"serve", "version", "check-config", "backup", "restore", "health", "help"}

// instr is one Dockerfile instruction: its keyword (upper case), its flags
// (--from=build) and its arguments, continuation lines joined.
type instr struct {
	cmd   string
	flags map[string]string
	args  []string
	raw   string // the text after the keyword
}

// stage is one FROM ... [AS name] and its instructions.
type stage struct {
	base, name string
	instrs     []instr
}

// parseDockerfile reads the stages of a Dockerfile (comments dropped,
// continuations joined, exec-form arguments decoded).
func parseDockerfile(t *testing.T, text string) []*stage {
	t.Helper()
	var stages []*stage
	var logical []string
	cur := ""
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		logical = append(logical, cur+trimmed)
		cur = ""
	}
	for _, l := range logical {
		kw, rest, _ := strings.Cut(l, " ")
		in := instr{cmd: strings.ToUpper(kw), flags: map[string]string{}, raw: strings.TrimSpace(rest)}
		fields := strings.Fields(rest)
		for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
			k, v, _ := strings.Cut(strings.TrimPrefix(fields[0], "--"), "=")
			in.flags[k] = v
			fields = fields[1:]
		}
		in.args = fields
		if len(fields) > 0 && strings.HasPrefix(fields[0], "[") && in.cmd != "HEALTHCHECK" {
			var arr []string
			if err := json.Unmarshal([]byte(strings.Join(fields, " ")), &arr); err != nil {
				t.Fatalf("Dockerfile: %s: exec form is not a JSON array: %v", l, err)
			}
			in.args = arr
		}
		if in.cmd == "FROM" {
			s := &stage{base: in.args[0]}
			if len(in.args) == 3 && strings.EqualFold(in.args[1], "AS") {
				s.name = in.args[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				continue
			}
			t.Fatalf("Dockerfile: %s before the first FROM", l)
		}
		s := stages[len(stages)-1]
		s.instrs = append(s.instrs, in)
	}
	if len(stages) == 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	return stages
}

// find returns the instructions of s with keyword cmd.
func (s *stage) find(cmd string) []instr {
	var out []instr
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// dockerignore is the list of patterns of a .dockerignore, with Docker's
// semantics: paths relative to the context root, filepath.Match patterns
// plus "**" for any number of directories, "!" re-includes, the last
// matching pattern wins, and a pattern matching a directory excludes what
// is in it.
type dockerignore []string

func (d dockerignore) excluded(p string) bool {
	excl := false
	for _, pat := range d {
		neg := strings.HasPrefix(pat, "!")
		pat = strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/")
		pat = strings.TrimSuffix(pat, "/")
		// The path itself or one of its parent directories.
		for q := p; q != "." && q != "/" && q != ""; q = path.Dir(q) {
			if globMatch(pat, q) {
				excl = !neg
				break
			}
		}
	}
	return excl
}

// globMatch is path.Match with "**" matching any number of segments.
func globMatch(pat, p string) bool {
	ps, ss := strings.Split(pat, "/"), strings.Split(p, "/")
	var match func(i, j int) bool
	match = func(i, j int) bool {
		if i == len(ps) {
			return j == len(ss)
		}
		if ps[i] == "**" {
			for k := j; k <= len(ss); k++ {
				if match(i+1, k) {
					return true
				}
			}
			return false
		}
		if j == len(ss) {
			return false
		}
		ok, err := path.Match(ps[i], ss[j])
		return err == nil && ok && match(i+1, j+1)
	}
	return match(0, 0)
}

func readDockerignore(t *testing.T) dockerignore {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	var d dockerignore
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			d = append(d, l)
		}
	}
	return d
}

// Ensure the Dockerfile keeps its rules: a multi-stage build whose last
// stage is distroless and runs as a non-root user; a HEALTHCHECK that runs
// a subcommand the binary has; the data volume (MQIM_DATA_DIR) copied in
// owned by that user; the demo's MQTT.js copied from an npm stage before
// go build; every COPY source in the build context (present and not
// excluded by .dockerignore) or produced by an earlier stage; EXPOSE equal
// to the default ports of configs/mqim.yaml. And .dockerignore keeps data,
// build output and node_modules out of the context.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := parseDockerfile(t, string(b))
	ignore := readDockerignore(t)
	final := stages[len(stages)-1]
	if len(stages) < 2 || !strings.HasPrefix(final.base, "gcr.io/distroless/") || !strings.HasSuffix(final.base, ":nonroot") {
		t.Errorf("last stage FROM %s (of %d stages), want a multi-stage build ending on gcr.io/distroless/...:nonroot", final.base, len(stages))
	}

	t.Run("User", func(t *testing.T) {
		users := final.find("USER")
		if len(users) == 0 {
			t.Fatal("no USER in the last stage: the server would run as root")
		}
		u := users[len(users)-1].args[0]
		if name, _, _ := strings.Cut(u, ":"); name == "root" || name == "0" {
			t.Errorf("USER %s, want a non-root user", u)
		}
	})

	t.Run("Healthcheck", func(t *testing.T) {
		hc := final.find("HEALTHCHECK")
		if len(hc) != 1 {
			t.Fatalf("%d HEALTHCHECK instructions in the last stage, want 1", len(hc))
		}
		_, form, ok := strings.Cut(hc[0].raw, "CMD ")
		var argv []string
		if !ok || json.Unmarshal([]byte(strings.TrimSpace(form)), &argv) != nil || len(argv) < 2 {
			t.Fatalf("HEALTHCHECK %s: want CMD in exec form [\"<binary>\", \"<subcommand>\", ...] (distroless has no shell)", hc[0].raw)
		}
		if !copiesTo(final, argv[0]) {
			t.Errorf("HEALTHCHECK runs %s, which no COPY of the last stage puts there", argv[0])
		}
		if ep := final.find("ENTRYPOINT"); len(ep) == 0 || ep[len(ep)-1].args[0] != argv[0] {
			t.Errorf("HEALTHCHECK runs %s, not the ENTRYPOINT binary", argv[0])
		}
		if !slices.Contains(mqimSubcommands, argv[1]) {
			t.Errorf("HEALTHCHECK runs subcommand %q; mqim has %v", argv[1], mqimSubcommands)
		}
		for i, a := range argv {
			if a == "--config" && (i+1 == len(argv) || !copiesTo(final, argv[i+1])) {
				t.Errorf("HEALTHCHECK --config names a file no COPY puts in the image")
			}
		}
	})

	t.Run("DataVolume", func(t *testing.T) {
		var dataDir string
		for _, e := range final.find("ENV") {
			for _, kv := range e.args {
				if v, ok := strings.CutPrefix(kv, "MQIM_DATA_DIR="); ok {
					dataDir = v
				}
			}
		}
		if dataDir != "/data" {
			t.Fatalf("ENV MQIM_DATA_DIR = %q, want /data", dataDir)
		}
		vols := final.find("VOLUME")
		if len(vols) == 0 || !slices.Contains(vols[0].args, dataDir) {
			t.Errorf("no VOLUME %s", dataDir)
		}
		users := final.find("USER")
		if len(users) == 0 {
			return // reported by User
		}
		user := users[len(users)-1].args[0]
		owned := false
		for i, in := range final.instrs {
			if in.cmd == "COPY" && in.args[len(in.args)-1] == dataDir {
				if owner, _, _ := strings.Cut(in.flags["chown"], ":"); owner != strings.Split(user, ":")[0] {
					t.Errorf("COPY into %s is owned by %q, want the runtime user %s", dataDir, in.flags["chown"], user)
				}
				if v := slices.IndexFunc(final.instrs, func(in instr) bool { return in.cmd == "VOLUME" }); v >= 0 && v < i {
					t.Errorf("COPY into %s comes after VOLUME: it would not be in the volume", dataDir)
				}
				owned = true
			}
		}
		if !owned {
			t.Errorf("no COPY --chown=%s creates %s: the volume would belong to root and the server could not write it", user, dataDir)
		}
	})

	t.Run("CopySources", func(t *testing.T) {
		names := map[string]*stage{}
		for i, s := range stages {
			for _, in := range s.find("COPY") {
				srcs := in.args[:len(in.args)-1]
				if len(srcs) == 0 {
					t.Errorf("COPY %s has no source", in.raw)
					continue
				}
				if from, ok := in.flags["from"]; ok {
					src, ok := names[from]
					if !ok {
						t.Errorf("COPY --from=%s: no earlier stage is named %s", from, from)
						continue
					}
					for _, p := range srcs {
						if !produces(src, p) {
							t.Errorf("COPY --from=%s %s: no RUN of stage %s writes it", from, p, from)
						}
					}
					continue
				}
				for _, p := range srcs {
					checkContextSource(t, ignore, p)
				}
			}
			if s.name != "" {
				names[s.name] = stages[i]
			}
		}
	})

	t.Run("DemoBundle", func(t *testing.T) {
		var build *stage
		for _, s := range stages {
			for _, r := range s.find("RUN") {
				if strings.Contains(r.raw, "go build") {
					build = s
				}
			}
		}
		if build == nil {
			t.Fatal("no stage runs go build")
		}
		copied, built := -1, -1
		for i, in := range build.instrs {
			if in.cmd == "COPY" && in.flags["from"] != "" && strings.HasSuffix(in.args[0], "mqtt/dist/mqtt.min.js") &&
				in.args[len(in.args)-1] == "web/demo/files/vendor/mqtt.min.js" {
				copied = i
			}
			if in.cmd == "RUN" && strings.Contains(in.raw, "go build") {
				built = i
			}
		}
		if copied < 0 || copied > built {
			t.Errorf("the go build stage does not copy MQTT.js (node_modules/mqtt/dist/mqtt.min.js) into web/demo/files/vendor before go build: the image's /demo would lack it")
		}
	})

	t.Run("Expose", func(t *testing.T) {
		var exposed []string
		for _, e := range final.find("EXPOSE") {
			for _, p := range e.args {
				exposed = append(exposed, strings.TrimSuffix(p, "/tcp"))
			}
		}
		want := defaultPorts(t)
		sort.Strings(exposed)
		if strings.Join(exposed, " ") != strings.Join(want, " ") {
			t.Errorf("EXPOSE %v, want the default ports of configs/mqim.yaml %v", exposed, want)
		}
	})

	t.Run("Dockerignore", func(t *testing.T) {
		for _, p := range []string{
			"data", "data/credentials.json", "data/attachments/ab/cd.png", "bin/mqim", ".git/HEAD",
			"node_modules/x/index.js", "test/js/node_modules/mqtt/package.json", "web/node_modules/mqtt/dist/mqtt.min.js",
			"web/demo/files/vendor/mqtt.min.js", "rest/rest.test", "cpu.prof",
		} {
			if !ignore.excluded(p) {
				t.Errorf(".dockerignore lets %s into the build context", p)
			}
		}
		for _, p := range []string{"go.mod", "cmd/mqim/main.go", "configs/mqim.yaml", "web/demo/files/index.html", "web/demo/files/vendor/README.md", "chat/testdata"} {
			if ignore.excluded(p) {
				t.Errorf(".dockerignore excludes %s, a source file of the build", p)
			}
		}
	})
}

// copiesTo reports whether a COPY of s writes the file p.
func copiesTo(s *stage, p string) bool {
	for _, in := range s.find("COPY") {
		if in.args[len(in.args)-1] == p {
			return true
		}
	}
	return false
}

// produces reports whether stage s makes p: a RUN names it or a parent
// directory of it (go build -o /out/mqim, mkdir -p /out/data), or p is
// under the stage's WORKDIR where a RUN installs node modules (npm ci).
func produces(s *stage, p string) bool {
	workdir := ""
	for _, in := range s.instrs {
		switch in.cmd {
		case "WORKDIR":
			workdir = in.args[0]
		case "RUN":
			for q := p; q != "/" && q != "."; q = path.Dir(q) {
				if strings.Contains(in.raw, " "+q) {
					return true
				}
			}
			if strings.Contains(in.raw, "npm ci") && strings.HasPrefix(p, path.Join(workdir, "node_modules")+"/") {
				return true
			}
		}
	}
	return false
}

// checkContextSource fails unless the COPY source p (a file, a directory
// or a glob, relative to the build context) exists and is not excluded by
// .dockerignore.
func checkContextSource(t *testing.T, ignore dockerignore, p string) {
	t.Helper()
	clean := path.Clean(strings.TrimPrefix(p, "./"))
	if clean == "." {
		return
	}
	matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(clean)))
	if err != nil || len(matches) == 0 {
		t.Errorf("COPY %s: no such file in the repository", p)
		return
	}
	if ignore.excluded(clean) {
		t.Errorf("COPY %s: excluded from the build context by .dockerignore", p)
	}
}

// defaultPorts returns the ports of the listeners configs/mqim.yaml turns
// on by default (an empty address is off), sorted.
func defaultPorts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "configs", "mqim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\s+(addr|tcp_addr|ws_addr|tls_addr|wss_addr):\s*"?([^"\s#]*)"?`)
	var ports []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		if m[2] == "" {
			continue
		}
		_, port, ok := strings.Cut(m[2], ":")
		if !ok {
			t.Fatalf("configs/mqim.yaml %s: %q has no port", m[1], m[2])
		}
		ports = append(ports, port)
	}
	if len(ports) == 0 {
		t.Fatal("configs/mqim.yaml: no listener addresses found")
	}
	sort.Strings(ports)
	return ports
}
