package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Every option is documented once, by its comment in configs/mqim.yaml.
// The README's configuration table is generated from that file:
//
//	go test ./cmd/mqim -run TestConfig_READMETable -update-readme

var updateREADME = flag.Bool("update-readme", false, "rewrite the configuration table of README.md from configs/mqim.yaml")

const (
	exampleConfig = "../../configs/mqim.yaml"
	readmePath    = "../../README.md"
	tableBegin    = "<!-- config-table:begin (generated from configs/mqim.yaml by TestConfig_READMETable) -->\n"
	tableEnd      = "<!-- config-table:end -->\n"
)

// configKey is one option of the example file.
type configKey struct {
	path    string // dotted, e.g. mqtt.tcp_addr
	value   string // as written in the file
	comment string // its own comment, "" if it shares the previous one
}

// exampleKeys reads the options of configs/mqim.yaml in file order.
func exampleKeys(t *testing.T) []configKey {
	t.Helper()
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var keys []configKey
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := prefix + k.Value
			comment := commentText(k.HeadComment)
			if i == 0 && prefix == "" {
				// The file's own header comes first; the last paragraph
				// belongs to the first key.
				parts := strings.Split(strings.TrimSpace(k.HeadComment), "\n\n")
				comment = commentText(parts[len(parts)-1])
			}
			if v.Kind == yaml.MappingNode {
				if comment != "" {
					// A commented section (chat.retention): its keys share
					// the section's comment.
					keys = append(keys, configKey{path: path, comment: comment})
				}
				walk(v, path+".")
				continue
			}
			value := v.Value
			if v.Kind == yaml.SequenceNode {
				value = "[]"
				if len(v.Content) > 0 {
					t.Fatalf("%s: list defaults are not supported", path)
				}
			} else if value == "" {
				value = `""`
			}
			keys = append(keys, configKey{path: path, value: value, comment: comment})
		}
	}
	walk(doc.Content[0], "")
	return keys
}

// commentText joins the lines of a YAML comment into one paragraph.
func commentText(c string) string {
	var words []string
	for _, l := range strings.Split(c, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
		if l != "" {
			words = append(words, l)
		}
	}
	return strings.Join(words, " ")
}

// firstSentence is the comment up to its first full stop followed by a
// capital letter, or all of it.
func firstSentence(s string) string {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '.' && s[i+1] == ' ' && unicode.IsUpper(rune(s[i+2])) {
			return s[:i+1]
		}
	}
	return s
}

// envOf maps each option to its MQIM_* variable, found by applying every
// variable of envVars to the defaults and seeing which option changes.
func envOf(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, e := range envVars {
		var changed []string
		for _, v := range []string{"7s", "true", "http://probe.invalid", "false"} {
			c := DefaultConfig()
			if e.apply(&c, v) != nil {
				continue
			}
			changed = diffPaths(reflect.ValueOf(DefaultConfig()), reflect.ValueOf(c), "")
			if len(changed) > 0 {
				break
			}
		}
		if len(changed) != 1 {
			t.Fatalf("%s changes %v, want exactly one option", e.name, changed)
		}
		m[changed[0]] = e.name
	}
	return m
}

// diffPaths lists the yaml paths of the leaf fields that differ.
func diffPaths(a, b reflect.Value, prefix string) []string {
	var out []string
	for i := 0; i < a.NumField(); i++ {
		f := a.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if isSection(f.Type) {
			out = append(out, diffPaths(a.Field(i), b.Field(i), prefix+name+".")...)
		} else if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			out = append(out, prefix+name)
		}
	}
	return out
}

// isSection reports whether a Config field is a nested section rather
// than one option.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != reflect.TypeOf(time.Duration(0))
}

// structPaths lists the yaml paths of every option of Config.
func structPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if isSection(f.Type) {
			out = append(out, structPaths(f.Type, prefix+name+".")...)
		} else {
			out = append(out, prefix+name)
		}
	}
	return out
}

// mdEscape keeps a comment's text literal in a Markdown table cell.
var mdEscape = strings.NewReplacer("|", `\|`, "<", "&lt;", "*", `\*`, "_", `\_`)

// configTable renders the README table: one row per comment of the
// example file, the keys that share it together.
func configTable(t *testing.T) string {
	t.Helper()
	env := envOf(t)
	type row struct {
		keys, envs, values []string
		meaning            string
	}
	parent := func(p string) string { return p[:strings.LastIndex(p, ".")+1] }
	var rows []*row
	var section, prev string // the commented section we are in; the previous key
	for _, k := range exampleKeys(t) {
		if k.value == "" { // a commented section
			rows = append(rows, &row{meaning: firstSentence(k.comment)})
			section, prev = k.path+".", k.path+"."
			continue
		}
		if !strings.HasPrefix(k.path, section) {
			section = ""
		}
		switch {
		case k.comment != "" && section == "":
			rows = append(rows, &row{meaning: firstSentence(k.comment)})
		case k.comment == "" && (len(rows) == 0 || parent(k.path) != parent(prev)):
			t.Errorf("configs/mqim.yaml: %s has no comment and follows no option of its section", k.path)
			rows = append(rows, &row{})
		}
		prev = k.path
		r := rows[len(rows)-1]
		name := "`" + k.path + "`"
		if len(r.keys) > 0 {
			name = "`" + k.path[strings.LastIndex(k.path, ".")+1:] + "`"
		}
		r.keys = append(r.keys, name)
		r.values = append(r.values, "`"+k.value+"`")
		if e := env[k.path]; e != "" {
			r.envs = append(r.envs, "`"+e+"`")
		}
	}
	var b strings.Builder
	b.WriteString("| key | env | default | meaning |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", strings.Join(r.keys, " / "), strings.Join(r.envs, " / "),
			strings.Join(r.values, " / "), mdEscape.Replace(r.meaning))
	}
	return b.String()
}

// Ensure the README's configuration table is the one configs/mqim.yaml
// generates (-update-readme rewrites it).
func TestConfig_READMETable(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := bytes.Cut(readme, []byte(tableBegin))
	_, after, ok2 := bytes.Cut(rest, []byte(tableEnd))
	if !ok || !ok2 {
		t.Fatalf("README.md has no %q ... %q section", tableBegin, tableEnd)
	}
	want := configTable(t)
	if string(rest[:len(rest)-len(after)-len(tableEnd)]) == want {
		return
	}
	if !*updateREADME {
		t.Fatalf("README.md's configuration table is not the one configs/mqim.yaml generates; run\n"+
			"  go test ./cmd/mqim -run TestConfig_READMETable -update-readme\nwant:\n%s", want)
	}
	var out bytes.Buffer // before and after share readme's array: copy
	out.Write(before)
	out.WriteString(tableBegin + want + tableEnd)
	out.Write(after)
	if err := os.WriteFile(readmePath, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log("rewrote the configuration table of README.md")
}

// Ensure configs/mqim.yaml and Config agree: the file sets every option
// of Config, each option has a comment (its own or its group's), and its
// values are exactly the embedded defaults.
func TestConfig_ExampleIsDefaults(t *testing.T) {
	keys := exampleKeys(t)
	inFile := map[string]bool{}
	for i, k := range keys {
		if k.value != "" {
			inFile[k.path] = true
		}
		if i == 0 && k.comment == "" {
			t.Errorf("%s: the first option has no comment", k.path)
		}
	}
	var missing []string
	for _, p := range structPaths(reflect.TypeOf(Config{}), "") {
		if !inFile[p] {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("configs/mqim.yaml does not document %v", missing)
	}

	got, err := LoadConfig(exampleConfig, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Marshal both: a nil and an empty list are the same option value.
	g, _ := yaml.Marshal(got)
	w, _ := yaml.Marshal(DefaultConfig())
	if !bytes.Equal(g, w) {
		t.Errorf("configs/mqim.yaml differs from DefaultConfig():\nfile:\n%s\ndefaults:\n%s", g, w)
	}
}
