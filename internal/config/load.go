package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a config file.
type Problem struct {
	File    string
	Line    int // 0 when unknown
	Path    string
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Errors is every problem found in one load, in file order.
type Errors []Problem

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads, expands, decodes and validates the config at path. A returned
// error is an Errors value when the file was read but is not valid.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse is Load on bytes already read; lookupEnv resolves ${VAR}.
func Parse(path string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	l := &loader{file: path, lines: map[string]int{}}
	sum := sha256.Sum256(data)

	// ${...} would be a syntax error inside YAML flow collections
	// ({kid: k1, secret: ${S}}), so each reference is swapped for an inert
	// placeholder before parsing and expanded in the parsed scalars after.
	data, refs := protectEnvRefs(data)
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{l.yamlError(err)}
	}
	cfg := defaults()
	cfg.Path, cfg.Hash, cfg.lines = path, hex.EncodeToString(sum[:]), l.lines
	if len(root.Content) == 0 {
		return nil, Errors{{File: path, Message: "config is empty"}}
	}
	doc := root.Content[0]
	expandEnv(doc, refs, lookupEnv)
	l.checkKeys(doc, reflect.TypeOf(cfg).Elem(), "")
	if err := doc.Decode(cfg); err != nil {
		l.typeErrors(err)
	}
	// Validate even when keys were unknown or mistyped, so one run reports
	// every problem in the file.
	v := &validator{cfg: cfg, file: path, lines: l.lines}
	v.run()
	if all := append(l.problems, v.problems...); len(all) > 0 {
		return nil, sortProblems(all)
	}
	return cfg, nil
}

type loader struct {
	file     string
	lines    map[string]int
	problems []Problem
}

var yamlLineRe = regexp.MustCompile(`line (\d+): (.*)`)

func (l *loader) yamlError(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{File: l.file, Line: n, Message: m[2]}
	}
	return Problem{File: l.file, Message: msg}
}

func (l *loader) typeErrors(err error) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		l.problems = append(l.problems, l.yamlError(err))
		return
	}
	for _, e := range te.Errors {
		l.problems = append(l.problems, l.yamlError(errors.New(e)))
	}
}

func sortProblems(ps []Problem) Errors {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return Errors(ps)
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkKeys walks the node tree against the Go type, reporting unknown keys
// and recording the line of every path for later validation messages.
func (l *loader) checkKeys(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			l.lines[p] = k.Line
			f, ok := fields[k.Value]
			if !ok {
				l.problems = append(l.problems, Problem{File: l.file, Line: k.Line, Path: p,
					Message: "unknown key" + suggest(k.Value, fields)})
				continue
			}
			l.checkKeys(v, f, p)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			l.lines[p] = k.Line
			l.checkKeys(v, t.Elem(), p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			l.lines[p] = item.Line
			l.checkKeys(item, t.Elem(), p)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

// suggest names a known key that differs from the unknown one by a small edit.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for name := range fields {
		if d := editDistance(key, name); d < bestDist || (d == bestDist && best != "" && name < best) {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var envRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

var placeholderRe = regexp.MustCompile(`__authgw_env_(\d+)__`)

// protectEnvRefs replaces every ${VAR} / ${VAR:-default} with a placeholder
// that is a plain YAML word, and returns the references in order.
func protectEnvRefs(data []byte) ([]byte, [][]string) {
	var refs [][]string
	out := envRe.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := envRe.FindSubmatch(m)
		refs = append(refs, []string{string(m), string(sub[1]), string(sub[2])})
		return []byte("__authgw_env_" + strconv.Itoa(len(refs)-1) + "__")
	})
	return out, refs
}

// expandEnv replaces placeholders in scalar values with the environment. An
// unset variable expands to its default or "" (so an optional setting like
// redis.url can be left unset); required values are then caught by
// validation. Keys are never expanded (their original text is restored), and
// an expanded value stays one scalar, so the environment cannot change the
// document's structure.
func expandEnv(n *yaml.Node, refs [][]string, lookupEnv func(string) (string, bool)) {
	restore := func(s string, expand bool) string {
		return placeholderRe.ReplaceAllStringFunc(s, func(m string) string {
			i, _ := strconv.Atoi(placeholderRe.FindStringSubmatch(m)[1])
			if i >= len(refs) {
				return m
			}
			if !expand {
				return refs[i][0]
			}
			if v, ok := lookupEnv(refs[i][1]); ok && v != "" {
				return v
			}
			return refs[i][2]
		})
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "__authgw_env_") {
			return
		}
		n.Value = restore(n.Value, true)
		// Let the decoder resolve the expanded value's type afresh (a plain
		// "${PORT}" becomes an int where a field wants one; an empty plain
		// value becomes null and keeps the default). Quoted values stay strings.
		n.Tag = ""
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			n.Content[i].Value = restore(n.Content[i].Value, false)
			expandEnv(n.Content[i+1], refs, lookupEnv)
		}
	default:
		for _, c := range n.Content {
			expandEnv(c, refs, lookupEnv)
		}
	}
}

var adminListenRe = regexp.MustCompile(`(?m)^[ \t]+admin_listen:[ \t]*["']?([^"'\s#]*)`)

// AdminListen reads only server.admin_listen from the file at path (with
// ${VAR} expansion and its default), without validating anything else: the
// container health check must keep passing while a running gateway ignores a
// bad edit of the rest of the file.
func AdminListen(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading config: %w", err)
	}
	data, refs := protectEnvRefs(data)
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 {
		// A broken edit: find the line the way a person would.
		if m := adminListenRe.FindSubmatch(data); m != nil {
			n := &yaml.Node{Kind: yaml.ScalarNode, Value: string(m[1])}
			expandEnv(n, refs, os.LookupEnv)
			return n.Value, nil
		}
		return defaults().Server.AdminListen, nil
	}
	expandEnv(root.Content[0], refs, os.LookupEnv)
	var partial struct {
		Server struct {
			AdminListen *string `yaml:"admin_listen"`
		} `yaml:"server"`
	}
	if err := root.Content[0].Decode(&partial); err != nil || partial.Server.AdminListen == nil {
		return defaults().Server.AdminListen, nil
	}
	return *partial.Server.AdminListen, nil
}
