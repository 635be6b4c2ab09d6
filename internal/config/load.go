package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
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

// Load reads, expands, decodes, provisions, validates and reads the secrets
// of the config at path. A returned error is an Errors value when the file
// was read but is not valid. Relative file paths in the config are resolved
// against the directory of path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse is Load on bytes already read; lookupEnv resolves ${VAR}. The steps,
// each once: expand ${VAR} → strict decode onto the zero Config →
// Provision (every default, relative paths) → Validate (pure) →
// LoadSecrets (the *_file secrets and key files).
func Parse(path string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	cfg, l, err := decode(path, data, lookupEnv)
	if err != nil {
		return nil, err
	}
	cfg.Provision()
	// Validate even when keys were unknown or mistyped, so one run reports
	// every problem in the file.
	all := l.problems
	reported := map[string]bool{}
	for _, p := range l.problems {
		reported[p.Path] = true
	}
	for _, p := range append(cfg.Validate(), cfg.LoadSecrets()...) {
		// A value the loader refused is left at its default: what
		// validation says about that default is not news.
		if !reported[p.Path] {
			all = append(all, p)
		}
	}
	if len(all) > 0 {
		return nil, sortProblems(all)
	}
	return cfg, nil
}

// decode reads data into a Config without defaults: what the file says,
// expanded. The loader holds the problems found so far.
func decode(path string, data []byte, lookupEnv func(string) (string, bool)) (*Config, *loader, error) {
	l := &loader{file: path, lines: map[string]int{}, given: map[string]bool{}, notes: map[string]string{}, unset: map[*yaml.Node]string{}}
	sum := sha256.Sum256(data)

	// ${...} would be a syntax error inside YAML flow collections
	// ({kid: k1, secret: ${S}}), so each reference is swapped for an inert
	// placeholder before parsing and expanded in the parsed scalars after.
	data, refs := protectEnvRefs(data)
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, Errors{l.syntaxProblem(data, err)}
	}
	cfg := &Config{Path: path, Hash: hex.EncodeToString(sum[:]), lines: l.lines, given: l.given, notes: l.notes}
	if len(root.Content) == 0 {
		return nil, nil, Errors{{File: path, Message: "config is empty"}}
	}
	doc := root.Content[0]
	l.expandEnv(doc, refs, lookupEnv)
	// checkKeys reports unknown keys and values of the wrong shape, and
	// takes the latter out of the tree, so the decoder leaves them unset
	// (Provision gives them their default) instead of reporting them again
	// in its own words.
	l.checkKeys(doc, reflect.TypeOf(cfg).Elem(), "")
	if err := doc.Decode(cfg); err != nil {
		l.typeErrors(err)
	}
	return cfg, l, nil
}

type loader struct {
	file  string
	lines map[string]int
	// given holds the paths written with a value (not null, not taken
	// out as the wrong shape): Provision leaves them as written.
	given    map[string]bool
	problems []Problem
	// unset holds, for a scalar that referred to unset variables, what to
	// say about them; notes holds the same by YAML path once checkKeys has
	// walked the tree.
	unset map[*yaml.Node]string
	notes map[string]string
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

func (l *loader) add(n *yaml.Node, path, format string, args ...any) {
	l.problems = append(l.problems, Problem{File: l.file, Line: n.Line, Path: path, Message: fmt.Sprintf(format, args...)})
}

func sortProblems(ps []Problem) Errors {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return Errors(ps)
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkKeys walks the node tree against the Go type: it reports unknown and
// repeated keys and values of the wrong shape (a string where a list
// belongs), records the line of every path for later validation messages,
// and removes what it reported so the decoder does not report it again.
func (l *loader) checkKeys(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if note, ok := l.unset[n]; ok {
		l.notes[path] = note
	}
	if n.ShortTag() == "!!null" {
		return // null: unset, Provision gives the default
	}
	l.given[path] = true
	if n.Kind == yaml.AliasNode {
		return // an alias is checked by the decoder
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		l.checkScalar(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if n.Kind != yaml.MappingNode {
			l.wrongShape(n, t, path)
			return
		}
		var fields map[string]reflect.Type
		if t.Kind() == reflect.Struct {
			fields = yamlFields(t)
		}
		seen := map[string]int{}
		var first *yaml.Node // the first key that repeats
		var others []string  // the keys that repeat after it
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if _, dup := seen[k.Value]; dup {
				if first == nil {
					first = k
				} else {
					others = append(others, "`"+k.Value+"`")
				}
				continue
			}
			seen[k.Value] = k.Line
			kept = append(kept, k, v)
			l.lines[p] = k.Line
			if t.Kind() == reflect.Map {
				l.checkKeys(v, t.Elem(), p)
				continue
			}
			f, ok := fields[k.Value]
			if !ok {
				l.add(k, p, "unknown key%s", suggest(k.Value, slices.Sorted(maps.Keys(fields))))
				continue
			}
			l.checkKeys(v, f, p)
		}
		if first != nil {
			// One problem for a block pasted twice, not one per line.
			msg := fmt.Sprintf("`%s` appears twice in one mapping (first on line %d); keep one", first.Value, seen[first.Value])
			if strings.HasSuffix(path, "]") {
				msg += `, or start a new list item with "- "`
			}
			if len(others) > 0 {
				msg += " (" + strings.Join(others, ", ") + " repeat too)"
			}
			l.add(first, join(path, first.Value), "%s", msg)
		}
		n.Content = kept
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			l.wrongShape(n, t, path)
			return
		}
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			l.lines[p] = item.Line
			l.checkKeys(item, t.Elem(), p)
		}
	default:
		l.checkScalar(n, t, path)
	}
}

// wrongShape reports a mapping, list or single value where another shape
// belongs, and takes the value out (the default stays).
func (l *loader) wrongShape(n *yaml.Node, t reflect.Type, path string) {
	key := path[strings.LastIndexAny(path, ".]")+1:]
	got := describeNode(n)
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.ScalarNode:
		l.add(n, path, "want a list, got %s — write %s: [%s]", got, key, n.Value)
	case t.Kind() == reflect.Slice:
		l.add(n, path, "want a list (\"- item\" lines or [a, b]), got %s", got)
	case (t.Kind() == reflect.Struct || t.Kind() == reflect.Map) && n.Kind == yaml.ScalarNode && strings.Contains(n.Value, ":"):
		k, v, _ := strings.Cut(n.Value, ":")
		l.add(n, path, "want a mapping, got %s — a key needs a space after its colon: %s: %s", got, k, v)
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		l.add(n, path, "want a mapping (indented \"key: value\" lines or {key: value}), got %s", got)
	default:
		l.add(n, path, "want a single value, got %s", got)
	}
	l.clear(n, path)
}

// checkScalar decodes a single value on its own and reports a value the
// field cannot hold, in words.
func (l *loader) checkScalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode && !reflect.PointerTo(t).Implements(unmarshalerType) {
		l.wrongShape(n, t, path)
		return
	}
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// A type of ours (a duration) explains itself.
		msg := l.yamlError(err).Message
		if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
			msg = m[2]
		}
		l.add(n, path, "%s", msg)
		l.clear(n, path)
		return
	}
	var msg string
	switch t.Kind() {
	case reflect.Bool:
		msg = fmt.Sprintf("want true or false, got %q", n.Value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		msg = fmt.Sprintf("want a whole number, got %q", n.Value)
	case reflect.Float32, reflect.Float64:
		msg = fmt.Sprintf("want a number, got %q", n.Value)
	default:
		msg = l.yamlError(err).Message
	}
	l.add(n, path, "%s", msg)
	l.clear(n, path)
}

// describeNode says what a value is, for a message.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.ShortTag() == "!!str" {
		return "the string " + strconv.Quote(n.Value)
	}
	return n.Value
}

// clear turns n, at path, into null: decoding leaves the field unset and
// Provision gives it its default.
func (l *loader) clear(n *yaml.Node, path string) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	delete(l.given, path)
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

// suggest names a known name that the unknown one differs from only in
// case, or by a small edit; names are sorted, so ties go to the first.
func suggest(unknown string, names []string) string {
	best, bestDist := "", 3
	for _, name := range names {
		if strings.EqualFold(unknown, name) {
			return fmt.Sprintf(" (did you mean %q? names are case-sensitive)", name)
		}
		if d := editDistance(unknown, name); d < bestDist {
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
// validation, which names the variable (l.unset). Keys are never expanded
// (their original text is restored), and an expanded value stays one scalar,
// so the environment cannot change the document's structure.
func (l *loader) expandEnv(n *yaml.Node, refs [][]string, lookupEnv func(string) (string, bool)) {
	var unset []string
	restore := func(s string, expand bool) string {
		return placeholderRe.ReplaceAllStringFunc(s, func(m string) string {
			i, _ := strconv.Atoi(placeholderRe.FindStringSubmatch(m)[1])
			if i >= len(refs) {
				return m
			}
			if !expand {
				return refs[i][0]
			}
			v, ok := lookupEnv(refs[i][1])
			if ok && v != "" {
				return v
			}
			if refs[i][2] == "" && !strings.Contains(refs[i][0], ":-") {
				if ok {
					unset = append(unset, "${"+refs[i][1]+"} is set but empty")
				} else {
					unset = append(unset, "${"+refs[i][1]+"} is not set")
				}
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
		if len(unset) > 0 {
			l.unset[n] = strings.Join(unset, ", ")
		}
		// Let the decoder resolve the expanded value's type afresh (a plain
		// "${PORT}" becomes an int where a field wants one; an empty plain
		// value becomes null and keeps the default). Quoted values stay strings.
		n.Tag = ""
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			n.Content[i].Value = restore(n.Content[i].Value, false)
			l.expandEnv(n.Content[i+1], refs, lookupEnv)
		}
	default:
		for _, c := range n.Content {
			l.expandEnv(c, refs, lookupEnv)
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
			(&loader{unset: map[*yaml.Node]string{}}).expandEnv(n, refs, os.LookupEnv)
			return n.Value, nil
		}
		return DefaultAdminListen, nil
	}
	(&loader{unset: map[*yaml.Node]string{}}).expandEnv(root.Content[0], refs, os.LookupEnv)
	var partial struct {
		Server struct {
			AdminListen *string `yaml:"admin_listen"`
		} `yaml:"server"`
	}
	if err := root.Content[0].Decode(&partial); err != nil || partial.Server.AdminListen == nil {
		return DefaultAdminListen, nil
	}
	return *partial.Server.AdminListen, nil
}
